"""The CUDA kernels (csrc/cuda), run on the CPU by the SIMT emulator (backend="cuda_emu"),
against the float64 reference by the rule of conftest.py, with the emulator's checks (races,
cp.async discipline, bounds, barriers) on for every launch."""

import pytest
import torch
from harness import Case, cases_for, check, run

import kron_attn
from kron_attn import backends, cuda_emu

pytestmark = pytest.mark.skipif(not cuda_emu.available(), reason=cuda_emu.problem())


@pytest.mark.parametrize("case", cases_for("cuda_emu"), ids=str)
def test_matches_reference(case):
    check("cuda_emu", case)


def test_gradients_are_bit_identical_across_runs_and_schedules():
    """No atomics, a fixed reduction order: two runs agree bit for bit, also when the emulator
    interleaves each CTA's threads in another order."""
    case = Case(1, 2, 8, 50, 64, "kmct")
    first = run("cuda_emu", case)
    try:
        cuda_emu.set_schedule_seed(12345)
        second = run("cuda_emu", case)
    finally:
        cuda_emu.set_schedule_seed(0)
    for a, b in zip((first.out, first.lse, *first.grads), (second.out, second.lse, *second.grads)):
        assert torch.equal(a, b)


def test_listed_and_never_chosen_by_auto():
    assert "cuda_emu" in kron_attn.available_backends()
    assert backends.choose("auto", torch.device("cpu"), torch.bfloat16, 64, 8).name == "cpu"


@pytest.mark.parametrize(
    "shape,dtype,message",
    [
        ((1, 1, 30, 80), torch.bfloat16, "head dims 32, 64, 96 and 128"),
        ((1, 1, 30, 64), torch.float64, "use backend='reference' for float64"),
        ((1, 1, 129, 64), torch.bfloat16, "up to 128 frames"),
    ],
)
def test_errors_are_those_of_the_cuda_op(shape, dtype, message):
    q = torch.randn(shape, dtype=dtype)
    frames = 129 if shape[2] == 129 else 3
    with pytest.raises(RuntimeError, match=message):
        kron_attn.attention(q, q, q, frames=frames, backend="cuda_emu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA tensor")
def test_refuses_cuda_tensors():
    q = torch.randn(1, 1, 6, 64, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="CPU tensors"):
        kron_attn.attention(q, q, q, frames=3, backend="cuda_emu")
