"""Evaluation protocols as code: zero-shot class lists, few-shot and zero-shot configs, split summaries."""

import pytest

from claver.labels import class_names, zeroshot


def test_kinetics600_novel_classes_are_the_220_of_the_zero_shot_benchmark():
    k400, k600 = set(class_names("kinetics400")), class_names("kinetics600")
    novel = zeroshot.kinetics600_novel_classes()
    assert len(set(k600) - k400) == 232  # a plain string difference counts the 12 renamed classes
    assert len(novel) == len(set(novel)) == 220
    assert set(novel) <= set(k600) and not set(novel) & k400
    assert not set(novel) & set(zeroshot.kinetics400_as_kinetics600())
    assert novel == [n for n in k600 if n in set(novel)]  # Kinetics-600 id order
    for old, new in zeroshot.K400_TO_K600_RENAMES.items():
        assert old in k400 and old not in k600 and new in k600 and new not in k400


def test_kinetics600_zero_shot_splits():
    novel = zeroshot.kinetics600_novel_classes()
    splits = [zeroshot.kinetics600_novel_split(s) for s in (1, 2, 3)]
    assert [len(s) for s in splits] == [160, 160, 160]
    assert all(set(s) <= set(novel) for s in splits)
    assert len(set().union(*splits)) == 217  # three classes are held out in every split
    with pytest.raises(ValueError, match="split must be one of"):
        zeroshot.kinetics600_novel_split(4)


def test_shipped_zero_shot_csvs_match_the_code():
    for name, names in zeroshot.shipped_lists().items():
        assert class_names(name) == names, name


def test_zero_shot_annotations_are_renumbered(tmp_path):
    k600 = class_names("kinetics600")
    novel = zeroshot.kinetics600_novel_classes()
    split1 = zeroshot.kinetics600_novel_split(1)
    held_out = next(n for n in novel if n not in split1)
    lines = [("a.mp4", "abseiling"), ("b.mp4", novel[0]), ("c.mp4", held_out), ("d.mp4", split1[-1])]
    ann = tmp_path / "val.txt"
    ann.write_text("".join(f"{p} {k600.index(c)}\n" for p, c in lines))
    zeroshot.write_annotations(ann, tmp_path / "zs")
    read = (tmp_path / "zs" / "novel.txt").read_text().split()
    assert read == ["b.mp4", "0", "c.mp4", str(novel.index(held_out)), "d.mp4", str(novel.index(split1[-1]))]
    assert (tmp_path / "zs" / "novel_split1.txt").read_text() == f"b.mp4 0\nd.mp4 {len(split1) - 1}\n"
    ann.write_text("a.mp4 600\n")
    with pytest.raises(ValueError, match="val.txt:1"):
        zeroshot.write_annotations(ann, tmp_path / "zs")
