"""Training as a user runs it, when things go wrong: every failure is one line and a non-zero
status, and nothing already in a run's folder is changed by a command that fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from claver.data import synthetic
from claver.demo import CONFIG

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("motion"), per_class=1, frames=8, size=32, seed=3)


def opts(motion: Path, out: Path, *extra: str) -> list[str]:
    return [
        "data.root", str(motion), "data.train", str(motion / "train.txt"), "data.val", str(motion / "val.txt"),
        "data.labels", str(motion / "labels.csv"), "data.prompts", str(motion / "prompts.json"),
        "data.batch_size", "4", "data.workers", "0", "optim.epochs", "1", "optim.effective_batch", "4",
        "run.out", str(out), *extra,
    ]  # fmt: skip


def command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run(*cmds: list[str]) -> list[subprocess.CompletedProcess]:
    """The commands, two at a time, from the checkout these tests belong to."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = []
    for i in range(0, len(cmds), 2):
        procs = [
            subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c in cmds[i : i + 2]
        ]
        for c, p in zip(cmds[i : i + 2], procs):
            out, err = p.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(c, p.returncode, out, err))
    return done


def one_line(proc: subprocess.CompletedProcess, status: int, *words: str) -> str:
    """The single line a failed command printed on stderr; it names every one of ``words``."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status and len(lines) == 1, proc.stderr[-3000:]
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def train_cmd(*args: str) -> list[str]:
    return command("claver.train", "--config", str(CONFIG), *args)


def test_configuration_errors_name_the_key(motion, tmp_path):
    out = tmp_path / "run"
    cases = {
        ("optim.epochs", "many"): "config.optim.epochs: expected an integer, got 'many'",
        ("data.scales", "1.0"): "config.data.scales: expected a list",
        ("run.save_every_steps", "0.5"): "config.run.save_every_steps: expected an integer, got 0.5",
        ("optim.lrr", "1"): "config.optim: unknown keys ['lrr']",
        ("run.max_skipped", "2"): "config.run.max_skipped: expected between 0.0 and 1.0, got 2.0",
    }
    procs = run(*(train_cmd("--opts", *opts(motion, out, *kv)) for kv in cases))
    for proc, words in zip(procs, cases.values()):
        one_line(proc, 2, words)
    assert not out.exists()  # nothing written before the configuration is checked


def test_numbers_written_as_strings_are_converted():
    from claver.train_config import load_config

    cfg = load_config(CONFIG, ["optim.epochs", '"3"', "optim.lr", "1e-4", "run.out", "2024"])
    assert cfg.optim.epochs == 3 and cfg.optim.lr == 1e-4 and cfg.run.out == "2024"
