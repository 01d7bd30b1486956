"""Annotation files: one "relative/path.mp4 label_id" per line (mmaction2's and CLAVER's layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    path: Path  # absolute
    label: int


def read_annotations(path: str | Path, root: str | Path, num_classes: int) -> list[Sample]:
    """Parse an annotation file; a bad line fails here, naming the file and the line."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    samples = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{line_no}: expected 'relative/path.mp4 label_id', got {line!r}")
        rel, label = parts
        if not label.lstrip("-").isdigit():
            raise ValueError(f"{path}:{line_no}: label id {label!r} is not an integer")
        if not 0 <= int(label) < num_classes:
            raise ValueError(f"{path}:{line_no}: label id {label} is outside [0, {num_classes})")
        samples.append(Sample(root / rel, int(label)))
    if not samples:
        raise ValueError(f"{path}: no samples")
    return samples
