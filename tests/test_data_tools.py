"""Split-file converters and few-shot lists."""

import pytest

from claver.data import convert, fewshot, video
from claver.labels import class_names


def test_ucf101_official_splits(tmp_path):
    names = class_names("ucf101")
    (tmp_path / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    (tmp_path / "trainlist01.txt").write_text(f"{names[3]}/v_{names[3]}_g08_c01.avi 4\n{names[0]}/v_a.avi 1\n")
    (tmp_path / "testlist01.txt").write_text(f"{names[100]}/v_{names[100]}_g01_c01.avi\n")
    train, val = convert.ucf101(tmp_path, 1, tmp_path / "ann")
    assert train.read_text().splitlines() == [f"{names[3]}/v_{names[3]}_g08_c01.avi 3", f"{names[0]}/v_a.avi 0"]
    assert val.read_text().splitlines() == [f"{names[100]}/v_{names[100]}_g01_c01.avi 100"]


def test_hmdb51_official_splits(tmp_path):
    for name in class_names("hmdb51"):
        folder = name.replace(" ", "_")
        (tmp_path / f"{folder}_test_split2.txt").write_text(
            f"{folder}_a.avi 1 \n{folder}_b.avi 2 \n{folder}_c.avi 0 \n"
        )
    train, val = convert.hmdb51(tmp_path, 2, tmp_path / "ann")
    assert len(train.read_text().splitlines()) == 51 and len(val.read_text().splitlines()) == 51
    assert train.read_text().splitlines()[0] == "brush_hair/brush_hair_a.avi 0"
    (tmp_path / "brush_hair_test_split3.txt").write_text("x.avi 7\n")
    with pytest.raises(ValueError, match=r"brush_hair_test_split3.txt:1: split id must be 0, 1 or 2"):
        convert.hmdb51(tmp_path, 3, tmp_path / "ann3")
    with pytest.raises(FileNotFoundError, match="missing HMDB-51 split file .*brush_hair_test_split1.txt"):
        convert.hmdb51(tmp_path, 1, tmp_path / "ann1")


def test_kinetics_csv(tmp_path):
    csv_path = tmp_path / "k.csv"
    csv_path.write_text("label,youtube_id,time_start,time_end,split\nabseiling,abc,10,20,train\nzumba,xyz,0,10,train\n")
    ann = convert.kinetics(csv_path, "kinetics400", tmp_path / "train.txt")
    assert ann.read_text().splitlines() == ["abseiling/abc_000010_000020.mp4 0", "zumba/xyz_000000_000010.mp4 399"]
    csv_path.write_text("label,youtube_id,time_start,time_end,split\nflying,abc,1,2,train\n")
    with pytest.raises(ValueError, match=r"k.csv:2: label 'flying'"):
        convert.kinetics(csv_path, "kinetics400", tmp_path / "bad.txt")


def test_fewshot_lists_are_reproducible(tmp_path):
    ann = tmp_path / "train.txt"
    ann.write_text("".join(f"v{c}_{i}.mp4 {c}\n" for c in range(51) for i in range(20)))
    first = fewshot.write_shot_lists(ann, "hmdb51", [2, 16], 0, tmp_path / "a")
    second = fewshot.write_shot_lists(ann, "hmdb51", [2, 16], 0, tmp_path / "b")
    for p, q in zip(first, second):
        assert p.read_text() == q.read_text()
    lines = first[1].read_text().splitlines()
    assert len(lines) == 51 * 16 and all(sum(ln.endswith(f" {c}") for ln in lines) == 16 for c in range(51))
    other = fewshot.write_shot_lists(ann, "hmdb51", [2], 1, tmp_path / "c")[0]
    assert other.read_text() != first[0].read_text()
    with pytest.raises(ValueError, match="fewer than 32 shots"):
        fewshot.write_shot_lists(ann, "hmdb51", [32], 0, tmp_path / "d")


def test_preprocess_and_loader_bench(tmp_path):
    from benchmarks import loader
    from claver.data import preprocess, synthetic
    from claver.data.video import probe
    from claver.demo import CONFIG
    from claver.train_config import load_config

    data = synthetic.generate(tmp_path / "motion", per_class=1, frames=8, size=48, seed=0)
    ann = tmp_path / "train.txt"
    ann.write_text((data / "val.txt").read_text() + "videos/missing.avi 0\n")
    new_ann, problems = preprocess.preprocess(ann, data, tmp_path / "small", short_side=32, workers=2)
    assert len(problems) == 1 and "missing" in problems[0]
    rel = new_ann.read_text().split()[0]
    info = probe(tmp_path / "small" / rel)
    assert (info.width, info.height, info.num_frames) == (32, 32, 8)
    opts = ["data.root", str(tmp_path / "small"), "data.train", str(new_ann), "data.labels", str(data / "labels.csv"),
            "data.batch_size", "4"]  # fmt: skip
    r = loader.measure(load_config(CONFIG, opts), batches=2)
    assert r["clips"] == 8 and r["clips_per_second"] > 0


def test_loader_benchmark_table(tmp_path):
    from benchmarks import loader

    args = ["--videos", "2", "--seconds", "1", "--frames", "8", "--workers", "1", "--out", str(tmp_path)]
    table, notes = loader.main([*args, "--decoders", "pyav,torchcodec"]).split("\n\n")
    header, _, *rows = (r.split("|")[1:-1] for r in table.splitlines())
    usable = [d for d in ("pyav", "torchcodec") if video.unavailable(d) is None]
    assert [h.strip() for h in header] == ["loader", "T", "workers", "full decode, PyAV", *usable]
    assert [r[0].strip() for r in rows] == ["training (augmented)", "evaluation (centre crop)"]
    assert all(r[1].strip() == "8" and all(float(v) > 0 for v in r[3:]) for r in rows)
    lines = notes.splitlines()
    assert lines[-1].startswith("finishing training clips on this CPU") and float(lines[-1].split()[-4]) > 0
