"""The CPU kernel against the float64 reference: values, gradients, registration, edge cases."""

import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import sample_inputs
from harness import cases_for, check
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kron_attn
from kron_attn import _C
from kron_attn.layouts import PRESETS, preset


def grads(out, inputs, seed=1):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(out.dtype)
    return torch.autograd.grad(out, inputs, g)


def check_float64(b, h, t, l, d, layout, scale=None):
    q, k, v = sample_inputs(b, h, t, l, d, torch.float64, requires_grad=True)
    out = kron_attn.attention(q, k, v, frames=t, layout=layout, scale=scale)
    ref = kron_attn.reference.attention(q, k, v, t, layout, scale)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    for ours, theirs in zip(grads(out, (q, k, v)), grads(ref, (q, k, v))):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("layout", PRESETS)
@pytest.mark.parametrize(
    "b,h,t,l,d",
    [(1, 1, 1, 1, 8), (2, 3, 3, 7, 16), (1, 2, 1, 197, 64), (1, 1, 8, 197, 80), (2, 1, 4, 1, 128), (1, 1, 5, 9, 3)],
)
def test_float64_matches_reference(b, h, t, l, d, layout):
    check_float64(b, h, t, l, d, layout)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    t=st.integers(1, 6),
    l=st.integers(1, 70),
    d=st.sampled_from([1, 5, 16, 33, 64]),
    bh=st.sampled_from([(1, 1), (2, 1), (1, 3)]),
    data=st.data(),
)
def test_random_custom_layouts_float64(t, l, d, bh, data):
    bits = data.draw(st.lists(st.booleans(), min_size=t * t, max_size=t * t))
    layout = torch.tensor(bits, dtype=torch.bool).view(t, t)
    scale = data.draw(st.sampled_from([None, 0.3]))
    check_float64(bh[0], bh[1], t, l, d, layout, scale)


@pytest.mark.parametrize("case", cases_for("cpu"), ids=str)
def test_by_rule(case):
    """Output, LSE and gradients on the shared cases (tests/harness.py), by the rule of conftest.py."""
    check("cpu", case)


def test_large_frame_counts():
    check_float64(1, 1, 16, 197, 64, "kmct")
    check_float64(1, 1, 32, 7, 32, "kmt")


def test_lse_is_logsumexp_of_allowed_scores():
    t, l, d = 3, 5, 8
    q, k, v = sample_inputs(2, 2, t, l, d, torch.float64)
    lay = preset("kmct", t)
    _, lse = torch.ops.kron_attn.attention_fwd(q, k, v, lay, 0.5)
    scores = (q @ k.transpose(-1, -2) * 0.5).masked_fill(~kron_attn.masks.dense_mask(t, l, lay), -math.inf)
    torch.testing.assert_close(lse, scores.logsumexp(-1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_every_instruction_set(isa):
    """Each compiled ISA, selected through KRON_ATTN_CPU_ISA in a fresh process."""
    code = textwrap.dedent(
        """
        import torch, kron_attn
        from kron_attn import _C
        print(_C.cpu_isa())
        for lay in ["kmt", "kmct", "joint"]:
            for dt, tol in [(torch.float64, 1e-10), (torch.float32, 2e-5)]:
                q, k, v = [torch.randn(2, 2, 3 * 37, 40, dtype=dt, requires_grad=True) for _ in range(3)]
                o = kron_attn.attention(q, k, v, frames=3, layout=lay)
                r = kron_attn.reference.attention(q.double(), k.double(), v.double(), 3, lay)
                g = torch.randn_like(r)
                ours = torch.autograd.grad(o, (q, k, v), g.to(dt))
                theirs = torch.autograd.grad(r, (q, k, v), g)
                for a, b in zip((o,) + ours, (r,) + theirs):
                    err = (a.double() - b).abs().max().item()
                    assert err < tol, (lay, dt, err)
        """
    )
    env = dict(os.environ, KRON_ATTN_CPU_ISA=isa)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode and "lacks" in proc.stderr:
        pytest.skip(f"this CPU cannot run {isa}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == {"generic": "generic", "avx2": "AVX2", "avx512": "AVX-512"}[isa]


def test_default_isa_is_reported():
    assert _C.cpu_isa() in ("generic", "AVX2", "AVX-512")


@pytest.mark.parametrize("layout", ["kmt", "kmct"])
def test_gradcheck_float64(layout):
    q, k, v = sample_inputs(1, 2, 3, 4, 5, torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: kron_attn.attention(a, b, c, frames=3, layout=layout), (q, k, v))


def test_compile_fullgraph_no_graph_break():
    block = kron_attn.KroneckerAttention(32, 4, frames=4, layout="kmct")
    x = torch.randn(2, 4 * 6, 32, requires_grad=True)
    compiled = torch.compile(block, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    torch.testing.assert_close(out, block(x))
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_autocast_bfloat16():
    block = kron_attn.KroneckerAttention(32, 4, frames=4)
    x = torch.randn(2, 4 * 6, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x)
        direct = kron_attn.attention(*sample_inputs(1, 2, 4, 6, 8), frames=4)
    assert out.dtype == torch.bfloat16 and direct.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), block(x), atol=5e-2, rtol=5e-2)


def test_non_contiguous_inputs():
    t, l, d = 3, 6, 16
    base = torch.randn(2, t * l, 3, 4, d, dtype=torch.float64)  # (B, N, qkv, H, D) as a fused projection
    q, k, v = (base[:, :, i].transpose(1, 2) for i in range(3))
    assert not q.is_contiguous()
    out = kron_attn.attention(q, k, v, frames=t)
    torch.testing.assert_close(out, kron_attn.reference.attention(q, k, v, t, "kmt"), rtol=0, atol=1e-10)
    strided = torch.randn(2, 4, t * l, 2 * d, dtype=torch.float64)[..., ::2]  # last dim not contiguous
    out = kron_attn.attention(strided, strided, strided, frames=t)
    ref = kron_attn.reference.attention(strided, strided, strided, t, "kmt")
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("which", ["q", "k"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_propagate_like_reference(which, bad):
    t, l = 3, 4
    q, k, v = sample_inputs(1, 1, t, l, 8, torch.float64)
    {"q": q, "k": k}[which][0, 0, 5, 2] = bad
    out = kron_attn.attention(q, k, v, frames=t, layout="kmct")
    ref = kron_attn.reference.attention(q, k, v, t, "kmct")
    assert torch.equal(out.isnan(), ref.isnan())
    fin = ~ref.isnan()
    torch.testing.assert_close(out[fin], ref[fin], rtol=0, atol=1e-10)


def test_non_finite_value_reaches_only_rows_that_attend_it():
    t, l = 3, 4
    q, k, v = sample_inputs(1, 1, t, l, 8, torch.float64)
    v[0, 0, 5, 0] = float("nan")  # token 5 is in frame 1: under kmct only frame 2 and itself see it
    out = kron_attn.attention(q, k, v, frames=t, layout="kmct")
    rows = out.isnan().any(-1)[0, 0]
    assert rows.tolist() == [False] * 5 + [True] + [False] * 2 + [True] * 4


def test_available_backends():
    names = kron_attn.available_backends()
    assert "cpu" in names and "reference" in names
    q, k, v = sample_inputs(1, 1, 2, 3, 4, torch.float64)
    ref = kron_attn.attention(q, k, v, frames=2, backend="reference")
    torch.testing.assert_close(kron_attn.attention(q, k, v, frames=2, backend="cpu"), ref, rtol=0, atol=1e-12)
