"""Published class lists of the benchmarks, shipped with the package.

``class_names("hmdb51")`` -> the 51 names in id order. Names: kinetics400, kinetics600, ucf101,
hmdb51, ssv2, and the zero-shot lists computed by :mod:`claver.labels.zeroshot`:
kinetics600_novel (the 220 Kinetics-600 classes not in Kinetics-400) and
kinetics600_novel_split1..3 (160 test classes each). A path to any "id,name" CSV works too.
"""

from __future__ import annotations

import csv
from pathlib import Path

DATA = Path(__file__).parent
DATASETS = (
    "kinetics400",
    "kinetics600",
    "ucf101",
    "hmdb51",
    "ssv2",
    "kinetics600_novel",
    "kinetics600_novel_split1",
    "kinetics600_novel_split2",
    "kinetics600_novel_split3",
)


def class_names(name_or_path: str | Path) -> list[str]:
    """Class names in id order from a shipped list or an "id,name" CSV (ids 0..C-1, each once)."""
    path = DATA / f"{name_or_path}.csv" if str(name_or_path) in DATASETS else Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no label list {name_or_path!r}: expected one of {DATASETS} or a CSV path")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["id", "name"]:
        raise ValueError(f"{path}: the first line must be the header 'id,name'")
    names: dict[int, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0].strip().isdigit() or not row[1].strip():
            raise ValueError(f"{path}:{line}: expected 'id,name', got {','.join(row)!r}")
        i = int(row[0])
        if i in names:
            raise ValueError(f"{path}:{line}: id {i} appears twice")
        names[i] = row[1].strip()
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{path}: ids must be 0..{len(names) - 1} without gaps")
    return [names[i] for i in range(len(names))]
