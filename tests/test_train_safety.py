"""Training as a user runs it, when things go wrong: every failure is one line and a non-zero
status, and nothing already in a run's folder is changed by a command that fails."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import motion_runs
import pytest

from claver.demo import CONFIG

ROOT = Path(__file__).resolve().parents[1]


def opts(motion: Path, out: Path, *extra: str) -> list[str]:
    return motion_runs.opts(motion, out, "optim.epochs", "1", "optim.effective_batch", "4", *extra)


def command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def start(cmd: list[str], **env: str) -> subprocess.Popen:
    """``cmd`` from the checkout these tests belong to."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **env)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(*cmds: list[str], **env: str) -> list[subprocess.CompletedProcess]:
    """The commands, two at a time (the machine's cores)."""
    done = []
    for i in range(0, len(cmds), 2):
        procs = [start(c, **env) for c in cmds[i : i + 2]]
        for c, p in zip(cmds[i : i + 2], procs):
            out, err = p.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(c, p.returncode, out, err))
    return done


def one_line(proc: subprocess.CompletedProcess, status: int, *words: str) -> str:
    """The one line a failed command printed (the last on stderr, after the warnings and progress
    bars of what ran before); it names every one of ``words``."""
    module = proc.args[2]
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"{module}:")]
    assert proc.returncode == status and len(lines) == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().endswith(lines[0]) and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def train_cmd(*args: str) -> list[str]:
    return command("claver.train", "--config", str(CONFIG), *args)


def test_configuration_errors_name_the_key(motion, tmp_path):
    out = tmp_path / "run"
    procs = run(
        train_cmd("--opts", *opts(motion, out, "optim.epochs", "many")),
        train_cmd("--opts", *opts(motion, out, "run.save_every_steps", "0.5")),
    )
    one_line(procs[0], 2, "config.optim.epochs: expected an integer, got 'many'")
    one_line(procs[1], 2, "config.run.save_every_steps: expected an integer, got 0.5")
    assert not out.exists()  # nothing written before the configuration is checked


@pytest.mark.parametrize(
    "key, value, problem",
    [
        ("data.scales", "1.0", "config.data.scales: expected a list such as [1.0], got 1.0"),
        ("optim.lrr", "1", "config.optim: unknown keys ['lrr']"),
        ("run.max_skipped", "2", "config.run.max_skipped: expected between 0.0 and 1.0, got 2.0"),
        ("run.save_every_steps", "-1", "config.run.save_every_steps: expected at least 0, got -1"),
        ("optim.lr", ".nan", "config.optim.lr: expected a finite number, got nan"),
        ("data.batch_size", "true", "config.data.batch_size: expected an integer, got True"),
        ("model.quick_gelu", "1", "config.model.quick_gelu: expected true or false or null, got 1"),
        ("model.drop_path", "1.5", "config.model: drop_path must be in [0, 1), got 1.5"),
        ("optim.amp", "fp8", "optim.amp must be one of"),
        ("data.decoder", "ffmpeg", "config.data: unknown video backend 'ffmpeg'; expected auto or one of pyav,"),
    ],
)
def test_every_key_is_checked(key, value, problem):
    from claver.train_config import ConfigError, load_config

    with pytest.raises(ConfigError) as e:
        load_config(CONFIG, [key, value])
    assert problem in str(e.value) and "\n" not in str(e.value)


def test_numbers_written_as_strings_are_converted():
    from claver.train_config import load_config

    cfg = load_config(CONFIG, ["optim.epochs", '"3"', "optim.lr", "1e-4", "run.out", "2024"])
    assert cfg.optim.epochs == 3 and cfg.optim.lr == 1e-4 and cfg.run.out == "2024"


@pytest.fixture(scope="module")
def finished(motion, tmp_path_factory):
    """A finished run (one epoch, a checkpoint every optimizer step)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    (proc,) = run(train_cmd("--opts", *opts(motion, out, "run.save_every_steps", "1")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_a_run_is_never_overwritten_or_resumed_from_the_wrong_file(motion, finished, tmp_path):
    before = snapshot(finished)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes((finished / "model.safetensors").read_bytes()[:1000])
    (tmp_path / "truncated.json").write_bytes((finished / "model.json").read_bytes())
    weights = str(finished / "model.safetensors")
    again, wrong_file, other_arch, bad_weights = run(
        train_cmd("--opts", *opts(motion, finished)),
        train_cmd("--resume", weights, "--opts", *opts(motion, finished)),
        train_cmd("--resume", "auto", "--opts", *opts(motion, finished, "model.temporal_layers", "2")),
        train_cmd("--opts", *opts(motion, tmp_path / "new", "model.pretrained", str(truncated))),
    )
    one_line(again, 2, f"{finished} already holds a run", "--resume auto", "run.out", "--overwrite")
    one_line(wrong_file, 2, weights, "CLAVER model (weights only), not a training state", "last.pt",
             "model.pretrained")  # fmt: skip
    one_line(other_arch, 2, "model.temporal_layers is None in the checkpoint but 2 in the configuration")
    one_line(bad_weights, 2, str(truncated))
    assert snapshot(finished) == before and not (tmp_path / "new").exists()


def test_evaluate_and_predict_refuse_non_finite_weights(motion, finished, tmp_path):
    from safetensors.torch import load_file, save_file

    weights = load_file(str(finished / "model.safetensors"))
    weights["video.temporal.temporal_embedding"][0, 0] = float("nan")
    nan = tmp_path / "diverged.safetensors"
    save_file(weights, str(nan))
    (tmp_path / "diverged.json").write_bytes((finished / "model.json").read_bytes())
    video = str(motion / "videos" / "growing" / "0001.mp4")
    evaluated, predicted = run(
        command(
            "claver.evaluate", "--config", str(CONFIG), "--checkpoint", str(nan), "--opts", *opts(motion, tmp_path)
        ),
        command("claver.predict", video, "--labels", "growing,shrinking", "--checkpoint", str(nan)),
    )
    for proc in (evaluated, predicted):
        one_line(proc, 2, f"{nan} holds non-finite weights", "video.temporal.temporal_embedding")


def test_overwrite_starts_the_run_over(motion, finished, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "steps.csv").write_text("step,loss\n1,5.0\n2,4.0\n3,3.0\n4,2.0\n")
    (out / "unrelated.txt").write_text("kept")
    (proc,) = run(train_cmd("--overwrite", "--opts", *opts(motion, out, "run.stop_after_steps", "1")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["step"] for r in rows(out / "steps.csv")] == ["1"] and (out / "unrelated.txt").read_text() == "kept"


def test_a_run_that_trains_nothing_fails(motion, tmp_path):
    half_missing = tmp_path / "train.txt"
    good = (motion / "train.txt").read_text().splitlines()
    half_missing.write_text("\n".join(good + [f"videos/missing_{i}.mp4 0" for i in range(len(good) + 1)]) + "\n")
    nowhere, mostly_missing, diverging = run(
        train_cmd("--opts", *opts(motion, tmp_path / "a", "data.root", "/nonexistent")),
        train_cmd("--opts", *opts(motion, tmp_path / "b", "data.train", str(half_missing))),
        train_cmd("--opts", *opts(motion, tmp_path / "c", "optim.lr", "1e30", "run.max_nonfinite_steps", "2")),
    )
    one_line(nowhere, 1, "epoch 0: no usable clip, all 12 skipped", "/nonexistent/videos/")
    one_line(mostly_missing, 1, "epoch 0: 13 of 25 clips skipped, more than run.max_skipped (0.5)", "missing_")
    one_line(diverging, 1, "the loss was not finite for 2 consecutive optimizer steps")
    for out in "abc":
        assert not (tmp_path / out / "model.safetensors").exists() and not (tmp_path / out / "last.pt").exists()


def test_a_killed_run_resumes_bit_for_bit(motion, tmp_path):
    stochastic = ("model.drop_path", "0.2", "optim.mixup", "0.8", "optim.cutmix", "1.0", "optim.smoothing", "0.1",
                  "optim.epochs", "2", "data.batch_size", "2", "optim.effective_batch", "2",
                  "run.save_every_steps", "1")  # fmt: skip
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = start(train_cmd("--opts", *opts(motion, whole, *stochastic)))
    victim = start(train_cmd("--opts", *opts(motion, killed, *stochastic)))
    deadline = time.time() + 120
    while not ((killed / "steps.csv").is_file() and len(rows(killed / "steps.csv")) >= 4):
        assert victim.poll() is None and time.time() < deadline, victim.stderr.read()[-3000:]
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert uninterrupted.wait(300) == 0, uninterrupted.stderr.read()[-3000:]
    assert not (killed / "model.safetensors").exists()
    # restarted as torchrun restarts a group: without --resume, which the restart count implies
    (resumed,) = run(train_cmd("--opts", *opts(motion, killed, *stochastic)), TORCHELASTIC_RESTART_COUNT="1")
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr[-3000:]
    assert rows(killed / "steps.csv") == rows(whole / "steps.csv")
    assert rows(killed / "metrics.csv") == rows(whole / "metrics.csv")
    assert len(rows(whole / "metrics.csv")) == 2 and len(rows(whole / "steps.csv")) == 12


def test_disk_full(motion, tmp_path):
    full, probed = tmp_path / "full", tmp_path / "probed"
    full.mkdir()
    (full / "last.tmp").symlink_to("/dev/full")  # where the checkpoint is written: a full disk
    little_space = ("import sys; from claver import train; train.free_bytes = lambda folder: 1000; "
                    "sys.argv[0] = 'claver.train'; train.main()")  # fmt: skip
    o = ("run.save_every_steps", "1")
    first, no_room = run(
        train_cmd("--resume", "auto", "--opts", *opts(motion, full, *o)),
        [sys.executable, "-c", little_space, "--config", str(CONFIG), "--opts", *opts(motion, probed, *o)],
    )
    one_line(first, 1, f"could not write the checkpoint {full / 'last.tmp'}: No space left on device")
    assert not (full / "last.tmp").exists() and not (full / "last.pt").exists()
    assert no_room.returncode == 1 and no_room.stderr.strip().splitlines()[-1].startswith(
        f"claver.train: not enough space in {probed} for the checkpoint: "
    ), no_room.stderr[-3000:]
    assert "bytes needed, 1000 free" in no_room.stderr
    assert not (probed / "last.tmp").exists() and not (probed / "last.pt").exists()
    (full / "last.tmp").symlink_to("/dev/full")
    (second,) = run(train_cmd("--resume", "auto", "--opts", *opts(motion, full, *o)))
    one_line(second, 1, "No space left on device")
    steps = (full / "steps.csv").read_bytes()
    (third,) = run(train_cmd("--resume", "auto", "--opts", *opts(motion, full, *o)))
    one_line(third, 1, "the checkpoint of optimizer step 1 failed twice", "No space left on device",
             str(full / "last.pt.failed"))  # fmt: skip
    assert (full / "steps.csv").read_bytes() == steps
