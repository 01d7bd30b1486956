"""Behaviour every backend with kernels shares, checked on each where it runs: strided and
misaligned inputs, empty batches and heads, a bit-identical backward from run to run. Accuracy
against float64 is tests/harness.py's; these are the contracts around it."""

import pytest
import torch
from conftest import assert_close_by_rule
from harness import device_of

import kron_attn
from kron_attn import backends

KERNELS = [b.name for b in backends.BACKENDS if b.op is not None]


def low_dtype(name: str) -> torch.dtype:
    """The reduced-precision dtype a backend's tests use: bfloat16, but float16 under Triton's
    interpreter, which gets bfloat16 dots wrong."""
    return torch.float16 if name == "triton" and device_of(name) == "cpu" else torch.bfloat16


def runnable(name: str) -> str:
    reason = backends.get(name).why_unavailable()
    if reason:
        pytest.skip(reason)
    return name


@pytest.mark.parametrize("name", KERNELS)
def test_strided_and_misaligned_inputs(name):
    """q, k, v as views of a fused (B, N, 3, H, D) projection, and at a 2-byte offset."""
    runnable(name)
    dev, dt, (t, l, d, h) = device_of(name), low_dtype(name), (3, 10, 32, 2)
    base = torch.randn(2, t * l, 3, h, d, device=dev, dtype=dt)
    fused = [base[:, :, i].transpose(1, 2) for i in range(3)]
    odd = torch.randn(2 * h * t * l * d + 1, device=dev, dtype=dt)[1:].view(2, h, t * l, d)  # not 16-byte aligned
    for (q, k, v), layout in ((fused, "kmt"), ((odd, odd, odd), "kmct")):
        assert not (q.is_contiguous() and q.data_ptr() % 16 == 0)
        exact = kron_attn.reference.attention(q.double(), k.double(), v.double(), t, layout)
        out = kron_attn.attention(q, k, v, frames=t, layout=layout, backend=name)
        assert_close_by_rule(out, kron_attn.reference.attention(q, k, v, t, layout), exact, f"{name} {layout}")


@pytest.mark.parametrize("shape", [(0, 2, 6, 32), (2, 0, 6, 32)])
@pytest.mark.parametrize("name", KERNELS)
def test_empty_batch_or_heads(name, shape):
    runnable(name)
    q = torch.randn(shape, device=device_of(name), dtype=low_dtype(name), requires_grad=True)
    out = kron_attn.attention(q, q, q, frames=3, backend=name)
    out.sum().backward()
    assert out.shape == shape and q.grad.shape == shape


@pytest.mark.parametrize("name", KERNELS)
def test_backward_is_bit_identical_across_runs(name):
    """No atomics and a fixed reduction order: the same inputs give the same gradients."""
    runnable(name)
    dev = device_of(name)
    b, h, t, l, d = (2, 4, 8, 197, 64) if dev == "cuda" else (1, 2, 4, 30, 32)
    q, k, v = (torch.randn(b, h, t * l, d, device=dev, dtype=low_dtype(name), requires_grad=True) for _ in range(3))
    out = kron_attn.attention(q, k, v, frames=t, backend=name)
    g = torch.randn_like(out)
    first = torch.autograd.grad(out, (q, k, v), g, retain_graph=True)
    second = torch.autograd.grad(out, (q, k, v), g)
    for a, c in zip(first, second):
        assert torch.equal(a, c)
