"""benchmarks/train_step.py: the original-formulation model is the same model, and the script runs."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks import train_step


@pytest.mark.parametrize("layout", ["kmt", "kmct"])
def test_original_attention_model_computes_the_same_function(layout):
    ours = train_step.build("claver-tiny", 3, "kron", layout).eval()
    theirs = train_step.build("claver-tiny", 3, "original", layout).eval()
    assert any(isinstance(b.attn, train_step.MaskedMultiheadAttention) for b in theirs.video.temporal.resblocks)
    video, tokens, _ = train_step.inputs(ours, 2, 32, classes=4, prompt_sets=2, device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(ours(video, tokens), theirs(video, tokens), rtol=1e-5, atol=1e-5)


def test_script_prints_a_row_per_frame_count_and_implementation(capsys):
    args = ["--arch", "claver-tiny", "--size", "32", "--frames", "2,4", "--device", "cpu", "--amp", "none",
            "--steps", "1", "--batch", "2", "--classes", "4", "--prompt-sets", "2"]  # fmt: skip
    rows = train_step.main(args)
    assert [(r["frames"], r["impl"]) for r in rows] == [(2, "kron"), (2, "original"), (4, "kron"), (4, "original")]
    assert all(r["ms"] > 0 and math.isnan(r["peak_gib"]) for r in rows)
    assert capsys.readouterr().out.count("| 4 | original | 2 |") == 1


def test_max_batch_needs_cuda():
    with pytest.raises(SystemExit):
        train_step.main(["--device", "cpu", "--max-batch"])
