"""Annotation files from the official split files of UCF-101, HMDB-51 and Kinetics.

    python -m claver.data.convert ucf101   --splits ucfTrainTestlist/ --split 1 --out ann/
    python -m claver.data.convert hmdb51   --splits testTrainMulti_7030_splits/ --split 1 --out ann/
    python -m claver.data.convert kinetics --csv train.csv --labels kinetics400 --out ann/train.txt

Writes "relative/path label_id" lines (ids 0-based, in the shipped label lists' order).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ..labels import class_names


def _write(path: Path, rows: list[tuple[str, int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{rel} {label}\n" for rel, label in rows))
    return path


def ucf101(splits: str | Path, split: int, out: str | Path) -> tuple[Path, Path]:
    """classInd.txt + trainlist0{split}.txt / testlist0{split}.txt -> out/train.txt, out/val.txt."""
    splits, out = Path(splits), Path(out)
    names = class_names("ucf101")
    index = {}
    for line in (splits / "classInd.txt").read_text().split("\n"):
        if line.strip():
            num, name = line.split()
            if name not in names:
                raise ValueError(f"{splits / 'classInd.txt'}: class {name!r} is not a UCF-101 class")
            index[int(num)] = names.index(name)
    rows = {}
    for kind in ("train", "test"):
        path = splits / f"{kind}list0{split}.txt"
        rows[kind] = []
        for n, line in enumerate(path.read_text().split("\n"), start=1):
            if not line.strip():
                continue
            parts = line.split()
            folder = parts[0].split("/")[0]
            if folder not in names:
                raise ValueError(f"{path}:{n}: unknown class folder {folder!r}")
            label = index[int(parts[1])] if len(parts) > 1 else names.index(folder)
            rows[kind].append((parts[0], label))
    return _write(out / "train.txt", rows["train"]), _write(out / "val.txt", rows["test"])


def hmdb51(splits: str | Path, split: int, out: str | Path) -> tuple[Path, Path]:
    """<class>_test_split{split}.txt files (1 = train, 2 = test, 0 = unused) -> out/train.txt, out/val.txt."""
    splits, out = Path(splits), Path(out)
    names = class_names("hmdb51")
    rows = {1: [], 2: []}
    for label, name in enumerate(names):
        folder = name.replace(" ", "_")
        path = splits / f"{folder}_test_split{split}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"missing HMDB-51 split file {path}")
        for n, line in enumerate(path.read_text().split("\n"), start=1):
            if not line.strip():
                continue
            video, kind = line.split()
            if kind not in ("0", "1", "2"):
                raise ValueError(f"{path}:{n}: split id must be 0, 1 or 2, got {kind!r}")
            if kind != "0":
                rows[int(kind)].append((f"{folder}/{video}", label))
    return _write(out / "train.txt", rows[1]), _write(out / "val.txt", rows[2])


def kinetics(csv_path: str | Path, labels: str, out: str | Path,
             pattern: str = "{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4") -> Path:  # fmt: skip
    """An official Kinetics CSV (label, youtube_id, time_start, time_end, split) -> one annotation file.
    ``pattern`` says how the downloaded files are named."""
    names = class_names(labels)
    rows = []
    with open(csv_path, newline="") as f:
        for n, rec in enumerate(csv.DictReader(f), start=2):
            label = rec.get("label")
            if label not in names:
                raise ValueError(f"{csv_path}:{n}: label {label!r} is not in {labels}")
            rel = pattern.format(label=label, youtube_id=rec["youtube_id"], time_start=int(float(rec["time_start"])),
                                 time_end=int(float(rec["time_end"])))  # fmt: skip
            rows.append((rel, names.index(label)))
    return _write(Path(out), rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="dataset", required=True)
    for name in ("ucf101", "hmdb51"):
        p = sub.add_parser(name)
        p.add_argument("--splits", required=True, help="folder of the official split files")
        p.add_argument("--split", type=int, choices=[1, 2, 3], default=1)
        p.add_argument("--out", required=True)
    k = sub.add_parser("kinetics")
    k.add_argument("--csv", required=True)
    k.add_argument("--labels", default="kinetics400", choices=["kinetics400", "kinetics600"])
    k.add_argument("--out", required=True)
    k.add_argument("--pattern", default="{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4")
    args = ap.parse_args(argv)
    if args.dataset == "kinetics":
        print(kinetics(args.csv, args.labels, args.out, args.pattern))
    else:
        print(*(ucf101 if args.dataset == "ucf101" else hmdb51)(args.splits, args.split, args.out))


if __name__ == "__main__":
    main()
