"""The built-in demo (python -m claver.demo) end to end on a few videos, and its reversal metric."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from claver import demo


def test_reversal_top1_compares_each_video_with_its_time_reversed_class():
    # classes (0, 1) and (2, 3) are reversal pairs
    probs = torch.tensor([[0.6, 0.1, 0.2, 0.1], [0.5, 0.2, 0.2, 0.1], [0.1, 0.1, 0.3, 0.5], [0.0, 0.1, 0.4, 0.5]])
    labels = torch.tensor([0, 1, 2, 3])
    # video 0: 0.6 > 0.1 right; video 1: 0.2 < 0.5 wrong; video 2: 0.3 < 0.5 wrong; video 3: 0.5 > 0.4 right
    assert demo.reversal_top1(probs, labels) == pytest.approx(0.5)


def test_demo_runs_and_prints_the_summary_line(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["--out", str(out), "--per-class", "4", "--epochs", "1", "--opts", "data.workers", "0"]
    demo.main(args)
    printed = capsys.readouterr().out
    last = printed.strip().splitlines()[-1]
    m = re.fullmatch(r"demo: kmt_top1=(\S+) kmct_top1=(\S+) framemean_top1=(\S+) framemean_reversal_top1=(\S+)", last)
    assert m, last
    assert all(0.0 <= float(x) <= 1.0 for x in m.groups())
    kmt = re.search(r"^demo: kmt: top1=(\S+)", printed, re.MULTILINE)  # the run's own line, 3 decimals
    assert float(m.group(1)) == pytest.approx(float(kmt.group(1)), abs=1e-3)
    assert (out / "demo.png").stat().st_size > 0
    for name in ("kmt", "kmct", "framemean"):
        assert (out / name / "model.safetensors").exists()
    # safe to run twice: finished runs are not repeated, and give the same numbers
    demo.main(args)
    assert capsys.readouterr().out.strip().splitlines()[-1] == last


def test_the_recipe_ships_inside_the_package():
    """An installed claver (not the repository) must find it."""
    assert demo.CONFIG.is_file() and demo.CONFIG.is_relative_to(Path(demo.__file__).resolve().parent)
