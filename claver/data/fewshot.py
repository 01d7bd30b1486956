"""Few-shot training lists: K videos per class drawn from a seed, written to files so that every
user trains on the same videos.

    python -m claver.data.fewshot --annotations ann/train.txt --labels hmdb51 --shots 2 4 8 16 --seed 0 --out ann/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..labels import class_names


def shot_list(annotations: str | Path, num_classes: int, shots: int, seed: int) -> list[str]:
    """``shots`` lines per class of the annotation file, chosen by ``seed``, in file order."""
    lines = [ln for ln in Path(annotations).read_text().split("\n") if ln.strip()]
    by_class: dict[int, list[int]] = {c: [] for c in range(num_classes)}
    for i, line in enumerate(lines):
        by_class[int(line.rsplit(maxsplit=1)[1])].append(i)
    rng = np.random.default_rng([seed, shots])
    chosen = []
    for c, idx in by_class.items():
        if len(idx) < shots:
            raise ValueError(f"{annotations}: class {c} has {len(idx)} videos, fewer than {shots} shots")
        chosen += rng.choice(idx, size=shots, replace=False).tolist()
    return [lines[i] for i in sorted(chosen)]


def write_shot_lists(annotations, labels: str, shots: list[int], seed: int, out) -> list[Path]:
    n = len(class_names(labels))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in shots:
        path = out / f"train_{k}shot_seed{seed}.txt"
        path.write_text("\n".join(shot_list(annotations, n, k, seed)) + "\n")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--labels", required=True, help="shipped list name or 'id,name' CSV")
    ap.add_argument("--shots", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    for p in write_shot_lists(args.annotations, args.labels, args.shots, args.seed, args.out):
        print(p)


if __name__ == "__main__":
    main()
