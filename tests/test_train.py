"""Training end to end on generated videos: runs, resumes exactly, survives broken files."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from decoders import BACKENDS, USABLE
from motion_runs import opts

from claver import train
from claver.demo import CONFIG
from claver.engine import EpochSampler
from claver.train_config import load_config

ROOT = Path(__file__).resolve().parents[1]


def losses(run_dir):
    with open(run_dir / "steps.csv") as f:
        return [(int(r["step"]), r["loss"]) for r in csv.DictReader(f)]


def test_training_runs_and_writes_everything(motion, tmp_path):
    metrics = train.train(load_config(CONFIG, opts(motion, tmp_path / "run")))
    out = tmp_path / "run"
    for name in ("last.pt", "model.safetensors", "model.json", "metrics.csv", "steps.csv", "log.txt", "curves.png"):
        assert (out / name).is_file(), name
    assert 0.0 <= metrics["val_top1"] <= 1.0 and metrics["val_videos"] == 12


def test_resume_after_interruption_gives_the_same_losses(motion, tmp_path):
    train.train(load_config(CONFIG, opts(motion, tmp_path / "a", "optim.mixup", "0.8", "optim.cutmix", "1.0")))
    interrupted = opts(motion, tmp_path / "b", "optim.mixup", "0.8", "optim.cutmix", "1.0", "run.stop_after_steps", "3")
    train.train(load_config(CONFIG, interrupted))  # 2 optimizer steps per epoch: stops inside epoch 1
    assert len(losses(tmp_path / "b")) == 3
    train.train(load_config(CONFIG, opts(motion, tmp_path / "b", "optim.mixup", "0.8", "optim.cutmix", "1.0")), "auto")
    assert losses(tmp_path / "b") == losses(tmp_path / "a")


@pytest.mark.parametrize("decoder", BACKENDS[:2])  # pyav, torchcodec
def test_broken_videos_are_skipped_and_counted(motion, tmp_path, decoder):
    videos = motion / "videos"
    (videos / "broken.mp4").write_bytes(b"garbage")
    (videos / "cut.mp4").write_bytes(next(videos.rglob("0000.mp4")).read_bytes()[:600])  # MP4 start, no index
    ann = tmp_path / "train.txt"
    ann.write_text((motion / "train.txt").read_text() + "videos/missing.mp4 0\nvideos/broken.mp4 1\nvideos/cut.mp4 2\n")
    metrics = train.train(
        load_config(
            CONFIG, opts(motion, tmp_path / "run", "data.train", str(ann), "optim.epochs", "1", "data.decoder", decoder)
        )
    )
    assert metrics["skipped"] == 3
    assert "skipped 3 broken videos" in (tmp_path / "run" / "log.txt").read_text()


def test_torchrun_two_cpu_processes(motion, tmp_path):
    # one clip per micro-batch, two micro-batches per optimizer step: the first runs under no_sync;
    # a missing video on each rank falls on a step's last micro-batch, which must still all-reduce
    ann = tmp_path / "train.txt"
    ann.write_text((motion / "train.txt").read_text() + "videos/missing_a.mp4 0\nvideos/missing_b.mp4 1\n")
    n = len(ann.read_text().splitlines())
    for rank in (0, 1):
        order = EpochSampler(n, rank, 2, shuffle=True, seed=0)._indices()
        assert [i for i, j in enumerate(order) if j >= n - 2] == [3 if rank == 0 else 5]
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"]
    args = opts(motion, tmp_path / "ddp", "optim.epochs", "1", "data.train", str(ann), "data.batch_size", "1",
                "optim.effective_batch", "4")  # fmt: skip
    cmd = [*run, "-m", "claver.train", "--config", str(CONFIG), "--opts", *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import claver

    model = claver.load_checkpoint(tmp_path / "ddp" / "model")
    assert model.frames == 8
    with open(tmp_path / "ddp" / "metrics.csv") as f:
        assert [r["skipped"] for r in csv.DictReader(f)] == ["2"]  # both ranks' broken videos
    assert "skipped 2 broken videos" in (tmp_path / "ddp" / "log.txt").read_text()


def test_tensorboard_scalars_when_installed(motion, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train.train(load_config(CONFIG, opts(motion, tmp_path / "run", "optim.epochs", "1")))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "epoch/loss", "epoch/val_top1"} <= tags
    assert len(events.Scalars("train/loss")) == 2  # 3 batches of 4 clips, 2 batches per optimizer step


def test_evaluate_cli_matches_training_evaluation(motion, tmp_path, capsys):
    from claver import evaluate

    o = opts(motion, tmp_path / "run", "optim.epochs", "1")
    metrics = train.train(load_config(CONFIG, o))
    for ckpt in ("model.safetensors", "last.pt"):
        result = evaluate.run(load_config(CONFIG, o), tmp_path / "run" / ckpt)
        assert result["top1"] == pytest.approx(metrics["val_top1"]) and result["videos"] == 12
    evaluate.main(["--config", str(CONFIG), "--checkpoint", str(tmp_path / "run" / "model.safetensors"), "--opts", *o])
    assert '"top1"' in capsys.readouterr().out


def test_config_overrides_and_errors(tmp_path):
    cfg = load_config(CONFIG, ["optim.lr", "12e-6", "data.batch_size", "3", "model.layout", "kmct"])
    assert cfg.optim.lr == 12e-6 and cfg.data.batch_size == 3 and cfg.model.layout == "kmct"
    with pytest.raises(ValueError, match=r"config.optim: unknown keys \['lrr'\]"):
        load_config(CONFIG, ["optim.lrr", "1"])
    with pytest.raises(ValueError, match="expected a number"):
        load_config(CONFIG, ["optim.lr", "fast"])
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {CONFIG}\noptim:\n  epochs: 3\n")
    assert load_config(child).optim.epochs == 3 and load_config(child).model.arch == "claver-tiny"


def test_predict_on_a_generated_video(motion, tmp_path, capsys):
    from claver import predict

    o = opts(motion, tmp_path / "run", "optim.epochs", "1")
    train.train(load_config(CONFIG, o))
    ckpt = tmp_path / "run" / "model.safetensors"
    video = motion / "videos" / "growing" / "0000.mp4"
    capsys.readouterr()  # drop the training log
    # The arch comes from the checkpoint (claver-tiny; --arch's default is ViT-B-16).
    predict.main([str(video), "--labels", "growing,shrinking,moving left", "--checkpoint", str(ckpt), "--top-k", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.split()[1] in ("growing", "shrinking", "moving") for line in lines)
    model = __import__("claver").create_model("claver-tiny", ckpt)
    pairs = predict.predict(video, ["growing", "shrinking"], model)
    assert sum(p for _, p in pairs) == pytest.approx(1.0, abs=1e-5)
    # the CLI's default bf16 autocast (as evaluation's optim.amp) against float32 throughout
    exact = dict(predict.Predictor(model, ["growing", "shrinking", "moving left"])(video))
    mixed = dict(predict.Predictor(model, ["growing", "shrinking", "moving left"], amp=torch.bfloat16)(video))
    assert exact.keys() == mixed.keys() and all(abs(exact[k] - mixed[k]) < 0.02 for k in exact)
    assert exact != mixed, "bf16 autocast was not applied"
    predict.main([str(video), "--labels", "growing,shrinking", "--checkpoint", str(ckpt), "--amp", "none"])
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    # as a command: it ends without the interpreter's teardown, so what it prints must be flushed
    cmd = [
        sys.executable,
        "-m",
        "claver.predict",
        str(video),
        "--labels",
        "growing,shrinking",
        "--checkpoint",
        str(ckpt),
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe: block-buffered
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and len(run.stdout.strip().splitlines()) == 2, run.stderr
    (tmp_path / "empty.mp4").write_text("")
    (tmp_path / "text.mp4").write_text("not a video")
    (tmp_path / "cut.mp4").write_bytes(video.read_bytes()[:600])  # an MP4 start, no index
    bad_files = {
        "empty.mp4": "empty file",
        "text.mp4": "cannot read",
        "nope.mp4": "missing video",
        "cut.mp4": "cannot read",
    }
    for decoder in [name for name in ("pyav", "torchcodec") if name in USABLE]:
        for bad, problem in bad_files.items():
            with pytest.raises(SystemExit) as exit_:
                predict.main([str(tmp_path / bad), "--labels", "a,b", "--checkpoint", str(ckpt), "--decoder", decoder])
            err = capsys.readouterr().err.strip().splitlines()
            assert exit_.value.code == 2 and len(err) == 1 and bad in err[0] and problem in err[0], (decoder, err)


@pytest.mark.parametrize(
    "path", sorted([*(ROOT / "configs").rglob("*.yaml"), *(ROOT / "claver").rglob("*.yaml")]), ids=str
)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.model.frames >= 1 and cfg.optim.lr > 0 and isinstance(cfg.optim.lr, float)


def test_metrics_csv_widens_its_header_when_validation_columns_appear(tmp_path):
    from claver.train import _append_csv

    path = tmp_path / "metrics.csv"
    _append_csv(path, {"epoch": 0, "loss": 2.0})  # no evaluation after this epoch
    _append_csv(path, {"epoch": 1, "loss": 1.5, "val_top1": 0.25})
    _append_csv(path, {"epoch": 2, "loss": 1.0})
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["val_top1"] for r in rows] == ["", "0.25", ""]
    assert [r["loss"] for r in rows] == ["2.0", "1.5", "1.0"]


def test_optimizer_scales_the_temporal_and_text_learning_rates():
    from claver import create_model

    model = create_model("claver-tiny", None, frames=2)
    cfg = load_config(CONFIG, ["optim.lr", "1e-3", "optim.temporal_lr_scale", "10", "optim.text_lr_scale", "0.1"])
    opt = train.build_optimizer(model, cfg)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["video.temporal.temporal_embedding"])] == pytest.approx(1e-2)
    assert lr_of[id(named["video.temporal.resblocks.0.attn.in_proj_weight"])] == pytest.approx(1e-2)
    assert lr_of[id(named["text.token_embedding.weight"])] == pytest.approx(1e-4)
    assert lr_of[id(named["video.visual.conv1.weight"])] == pytest.approx(1e-3)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)  # the logged lr is optim.lr's
    assert decay_of[id(named["video.visual.conv1.weight"])] == cfg.optim.weight_decay
    assert decay_of[id(named["video.temporal.resblocks.0.ln_1.weight"])] == 0.0
    assert len(lr_of) == sum(p.requires_grad for p in model.parameters())
