"""Shared helpers: random inputs and the FlashAttention error rule: error in a low-precision
dtype <= 2 x that of the reference computed in that dtype + 1e-5."""

from __future__ import annotations

import os

import pytest

# `make test` runs the suite in parallel (pytest-xdist, one worker per core). Each worker keeps
# the thread count a single process would have (at least two: the CPU kernel's split of work
# across threads stays under test) and waits for work without spinning, so that the workers'
# OpenMP pools share the cores instead of starving each other. libgomp reads the wait policy
# when torch loads it.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

if WORKERS > 1:
    torch.set_num_threads(max(2, (os.cpu_count() or 1) // WORKERS))

# Without a GPU the Triton kernels run in Triton's interpreter; it must be chosen before Triton
# is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def sample_inputs(b, h, t, l, d, dtype=torch.float32, device="cpu", requires_grad=False, seed=0):
    """Fresh random q, k, v of shape (b, h, t*l, d)."""
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(b, h, t * l, d, generator=g, dtype=torch.float64)
        .to(dtype=dtype, device=device)
        .requires_grad_(requires_grad)
        for _ in range(3)
    ]


def assert_close_by_rule(ours, ref_lowp, exact, what=""):
    """error(ours) <= 2 * error(reference computed in the same dtype) + 1e-5."""
    err = (ours.double() - exact).abs().max().item()
    base = (ref_lowp.double() - exact).abs().max().item()
    assert err <= 2 * base + 1e-5, f"{what}: error {err:.3g} > 2 x reference error {base:.3g} + 1e-5"


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    """The generated motion set, small: 2 videos per class of 8 frames at 32 pixels (made once per
    test module)."""
    from claver.data import synthetic

    return synthetic.generate(tmp_path_factory.mktemp("motion"), per_class=2, frames=8, size=32, seed=3)
