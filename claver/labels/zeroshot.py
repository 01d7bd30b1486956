"""Zero-shot class lists computed from the shipped label lists.

Kinetics-600 zero-shot (train on Kinetics-400, test on the classes Kinetics-400 lacks) uses 220
novel classes. A plain string difference of the two lists gives 232, because Kinetics-600 renamed
12 Kinetics-400 classes (spelling, added qualifiers, or a new name). ``K400_TO_K600_RENAMES`` is
that mapping; :func:`kinetics600_novel_classes` applies it and returns the 220 names.

The benchmark then draws three splits, each holding out 60 of the 220 classes (for validation) and
testing on the other 160; results are the mean and spread over the three splits.

Sources checked (2025): the 220 count and the three splits are those of Chen & Huang, "Elaborative
Rehearsal for Zero-shot Action Recognition" (ICCV 2021; github.com/DeLightCMU/ElaborativeRehearsal,
datasets/Kinetics/zsl220/val_class_idxs.json, held-out classes indexed 400-619), used by X-CLIP,
ViFi-CLIP and CLAVER. With this rename list, the 220 classes in Kinetics-600 id order, indexed from
400, reproduce those splits exactly: the 160 test classes of each equal the label files of
ViFi-CLIP (github.com/muzairkhattak/ViFi-CLIP, labels/ZS_split{1,2,3}_K600.csv). A missing or extra
rename would shift the indices and break that match (tests/test_protocols.py checks the counts).

    python -m claver.labels.zeroshot write        # regenerate the shipped CSVs from the code
    python -m claver.labels.zeroshot annotations --k600 ann/k600/val.txt --out ann/k600_zs
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import DATA, class_names

# Kinetics-400 name -> the same class's Kinetics-600 name.
K400_TO_K600_RENAMES = {
    "baby waking up": "waking up",
    "balloon blowing": "inflating balloons",
    "changing wheel": "changing wheel (not on bike)",
    "cooking sausages": "cooking sausages (not on barbeque)",
    "dying hair": "dyeing hair",
    "garbage collecting": "person collecting garbage",
    "hugging": "hugging (not baby)",
    "making bed": "making the bed",
    "opening bottle": "opening bottle (not wine)",
    "passing American football (not in game)": "passing american football (not in game)",
    "throwing ball": "throwing ball (not baseball or American football)",
    "tying tie": "tying necktie",
}

# The 60 classes each split holds out, as positions in kinetics600_novel_classes() (the ER-ZASR
# indices minus 400); the other 160 are the split's test classes.
K600_SPLIT_HELD_OUT = {
    1: (2, 3, 5, 15, 18, 23, 26, 27, 28, 31, 35, 36, 39, 41, 42, 50, 57, 58, 60, 68, 70, 72, 75, 81, 85, 86, 87, 92,
        94, 95, 97, 106, 107, 113, 120, 128, 132, 135, 138, 140, 153, 159, 165, 167, 170, 172, 175, 178, 181, 183,
        192, 194, 197, 200, 205, 206, 207, 211, 213, 216),
    2: (1, 2, 3, 6, 11, 13, 15, 16, 21, 22, 25, 29, 30, 33, 36, 38, 48, 58, 59, 62, 63, 67, 71, 73, 77, 80, 83, 96,
        97, 98, 103, 105, 108, 109, 110, 112, 113, 127, 131, 142, 146, 149, 150, 157, 158, 166, 171, 175, 177, 178,
        184, 195, 199, 202, 208, 209, 213, 214, 218, 219),
    3: (0, 9, 13, 14, 19, 30, 31, 35, 42, 47, 48, 51, 53, 54, 56, 60, 65, 66, 67, 73, 79, 97, 100, 101, 103, 113,
        115, 117, 120, 123, 127, 128, 130, 131, 134, 135, 136, 138, 145, 154, 157, 159, 161, 162, 164, 166, 173, 174,
        175, 177, 184, 185, 186, 192, 197, 198, 206, 209, 211, 219),
}  # fmt: skip


def kinetics400_as_kinetics600() -> list[str]:
    """The Kinetics-400 class names, renamed to their Kinetics-600 spelling (id order kept)."""
    k400, k600 = class_names("kinetics400"), set(class_names("kinetics600"))
    missing = [old for old in K400_TO_K600_RENAMES if old not in k400]
    wrong = [new for new in K400_TO_K600_RENAMES.values() if new not in k600]
    if missing or wrong:
        raise ValueError(f"rename table out of date: not Kinetics-400 names {missing}, not Kinetics-600 names {wrong}")
    return [K400_TO_K600_RENAMES.get(n, n) for n in k400]


def kinetics600_novel_classes() -> list[str]:
    """The 220 Kinetics-600 classes that are not Kinetics-400 classes, in Kinetics-600 id order."""
    seen = set(kinetics400_as_kinetics600())
    return [n for n in class_names("kinetics600") if n not in seen]


def kinetics600_novel_split(split: int) -> list[str]:
    """The 160 test classes of zero-shot split 1, 2 or 3 (the 220 novel classes minus 60 held out)."""
    if split not in K600_SPLIT_HELD_OUT:
        raise ValueError(f"split must be one of {sorted(K600_SPLIT_HELD_OUT)}, got {split}")
    held = set(K600_SPLIT_HELD_OUT[split])
    return [n for i, n in enumerate(kinetics600_novel_classes()) if i not in held]


def shipped_lists() -> dict[str, list[str]]:
    """Label-list name -> class names, for every list this module computes."""
    out = {"kinetics600_novel": kinetics600_novel_classes()}
    for s in sorted(K600_SPLIT_HELD_OUT):
        out[f"kinetics600_novel_split{s}"] = kinetics600_novel_split(s)
    return out


def write_label_lists(out: str | Path = DATA) -> list[Path]:
    """Write each computed list as an "id,name" CSV (the shipped files are written by this)."""
    paths = []
    for name, names in shipped_lists().items():
        path = Path(out) / f"{name}.csv"
        path.write_text("id,name\n" + "".join(f"{i},{_csv_field(n)}\n" for i, n in enumerate(names)))
        paths.append(path)
    return paths


def _csv_field(name: str) -> str:
    return f'"{name}"' if "," in name or '"' in name else name


def write_annotations(k600_annotations: str | Path, out: str | Path) -> list[Path]:
    """Keep the novel-class lines of a Kinetics-600 annotation file (ids in Kinetics-600 order)
    and renumber them for each zero-shot list: ``out/novel.txt`` (220 classes) and
    ``out/novel_split{1,2,3}.txt`` (160 classes each)."""
    k600 = class_names("kinetics600")
    lines = []
    for n, line in enumerate(Path(k600_annotations).read_text().split("\n"), start=1):
        if line.strip():
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= len(k600):
                raise ValueError(f"{k600_annotations}:{n}: expected 'path label_id' with a Kinetics-600 id")
            lines.append((parts[0], k600[int(parts[1])]))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, names in shipped_lists().items():
        ids = {c: i for i, c in enumerate(names)}
        path = out / f"{name.removeprefix('kinetics600_')}.txt"
        path.write_text("".join(f"{rel} {ids[c]}\n" for rel, c in lines if c in ids))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write the computed label lists as CSVs")
    w.add_argument("--out", default=str(DATA))
    a = sub.add_parser("annotations", help="zero-shot annotation files from a Kinetics-600 one")
    a.add_argument("--k600", required=True, help="annotation file with Kinetics-600 label ids")
    a.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    paths = write_label_lists(args.out) if args.cmd == "write" else write_annotations(args.k600, args.out)
    for p in paths:
        print(p)


if __name__ == "__main__":
    main()
