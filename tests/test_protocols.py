"""Evaluation protocols as code: zero-shot class lists, few-shot and zero-shot configs, split summaries."""

import json
from pathlib import Path

import pytest
import torch

import claver
from claver import evaluate, prompts
from claver.data import synthetic
from claver.data.fewshot import write_shot_lists
from claver.demo import CONFIG as DEMO
from claver.engine import Dist, make_loader, predict_probs, prompt_tokens
from claver.labels import class_names, zeroshot
from claver.predict import Predictor
from claver.train_config import for_split, load_config


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


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("dataset", ["hmdb51", "ucf101"])
def test_few_shot_configs_train_on_the_lists_the_documented_command_writes(dataset, tmp_path):
    n = len(class_names(dataset))
    ann = tmp_path / "train.txt"
    ann.write_text("".join(f"v{c}_{i}.mp4 {c}\n" for c in range(n) for i in range(16)))
    written = write_shot_lists(ann, dataset, [2, 4, 8, 16], 0, tmp_path / "split1")  # the seed of the configs
    for k, path in zip((2, 4, 8, 16), written):
        cfg = load_config(CONFIGS / "fewshot" / f"{dataset}_{k}shot.yaml")
        assert Path(cfg.data.train).name == path.name and Path(cfg.data.train).parent.name == "split1"
        assert (cfg.model.frames, cfg.model.arch, cfg.optim.lr, cfg.data.labels) == (32, "ViT-B-16", 2e-6, dataset)
        assert cfg.optim.effective_batch == 64 and cfg.optim.weight_decay == 0.001 and cfg.optim.warmup_epochs == 5
        assert len(path.read_text().split("\n")) - 1 == k * n


@pytest.mark.parametrize("name, classes", [("hmdb51", 51), ("ucf101", 101), ("k600", 160)])
def test_zero_shot_configs_expand_to_three_splits(name, classes):
    cfg = load_config(CONFIGS / "zeroshot" / f"{name}.yaml")
    train = load_config(CONFIGS / "zeroshot" / "k400_b16_32f.yaml")
    assert (cfg.model, cfg.model.frames) == (train.model, train.model.frames) == (train.model, 32)
    assert (train.data.labels, train.data.prompts) == ("kinetics400", "kinetics400") and cfg.eval.splits == [1, 2, 3]
    vals = set()
    for s in cfg.eval.splits:
        split = for_split(cfg, s)
        assert f"{s}" in split.data.val and len(class_names(split.data.labels)) == classes
        assert set(class_names(split.data.labels)) <= set(prompts.load(split.data.prompts).by_name())
        vals.add(split.data.val)
    assert len(vals) == 3


def test_evaluate_over_splits_reports_mean_and_spread(tmp_path, capsys):
    motion = synthetic.generate(tmp_path / "motion", per_class=1, frames=8, size=32, seed=5)
    lines = (motion / "val.txt").read_text().splitlines()
    (motion / "val_a.txt").write_text("\n".join(lines) + "\n")
    (motion / "val_b.txt").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    ckpt = claver.save_checkpoint(claver.create_model("claver-tiny", None, frames=8), tmp_path / "model")
    opts = [
        "data.root", str(motion), "data.val", str(motion / "val_{split}.txt"), "data.labels",
        str(motion / "labels.csv"), "data.prompts", str(motion / "prompts.json"), "eval.splits", "[a, b]",
    ]  # fmt: skip
    result = evaluate.run(load_config(DEMO, opts), ckpt)
    a, b = result["splits"]["a"], result["splits"]["b"]
    assert (a["videos"], b["videos"]) == (len(lines), len(lines) // 2)
    assert result["mean"]["top1"] == pytest.approx((a["top1"] + b["top1"]) / 2)
    assert result["std"]["top1"] == pytest.approx(abs(a["top1"] - b["top1"]) / 2)
    evaluate.main(["--config", str(DEMO), "--checkpoint", str(ckpt), "--opts", *opts])
    assert set(json.loads(capsys.readouterr().out)) == {"splits", "mean", "std"}
    with pytest.raises(ValueError, match="contains '{split}'"):
        evaluate.run(load_config(DEMO, [*opts, "data.val", str(motion / "val_a.txt")]), ckpt)


def test_predictor_gives_the_evaluation_probabilities(tmp_path):
    """claver.predict and evaluation build the prompt sets and score the videos the same way: the
    same videos, model, labels and prompt file give the same class probabilities."""
    motion = synthetic.generate(tmp_path / "motion", per_class=1, frames=8, size=32, seed=7)
    torch.manual_seed(0)
    model = claver.create_model("claver-tiny", None, frames=8)
    opts = [
        "data.root", str(motion), "data.val", str(motion / "val.txt"), "data.labels", str(motion / "labels.csv"),
        "data.prompts", str(motion / "prompts.json"), "data.workers", "0", "data.batch_size", "1",
    ]  # fmt: skip
    cfg = load_config(DEMO, opts)
    loader, _ = make_loader(cfg, train=False, dist_=Dist())
    probs, _, _ = predict_probs(model, loader, prompt_tokens(cfg), len(synthetic.class_names()), Dist())
    predictor = Predictor(model, class_names(cfg.data.labels), cfg.data.prompts)
    videos = [motion / line.split()[0] for line in (motion / "val.txt").read_text().splitlines()]
    assert len(videos) == len(probs) > 1
    torch.testing.assert_close(torch.stack([predictor.probs(v) for v in videos]), probs, rtol=0, atol=0)
