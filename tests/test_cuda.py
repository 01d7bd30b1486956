"""The CUDA kernel (csrc/cuda) on a GPU against the float64 reference, by the rule of conftest.py, on the
shared cases of tests/harness.py and the canonical shapes (benchmarks/shapes.py).

The GPU cases skip with a reason when no GPU (or no compiled kernel) is present; the build and
backend-choice checks at the top run everywhere. The same kernels run on the CPU, emulated, in
tests/test_cuda_emu.py.
"""

import os

import pytest
import torch
from conftest import assert_close_by_rule, sample_inputs
from harness import Case, cases_for, check

import kron_attn
from benchmarks.shapes import SHAPES
from kron_attn import _C, backends
from kron_attn.layouts import preset

needs_gpu = pytest.mark.skipif(
    not (torch.cuda.is_available() and _C.has_cuda()),
    reason="needs a CUDA GPU and a kron_attn build with the CUDA kernel (KRON_ATTN_CUDA=1)",
)


# ---- everywhere: build and dispatch -------------------------------------------------------


@pytest.mark.skipif(os.environ.get("KRON_ATTN_CUDA") not in ("0", "1"), reason="KRON_ATTN_CUDA not set for this run")
def test_build_matches_switch():
    assert _C.has_cuda() == (os.environ["KRON_ATTN_CUDA"] == "1")


def test_cuda_kernels_registered_iff_compiled():
    for op in ("kron_attn::attention_fwd", "kron_attn::attention_bwd"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA") == _C.has_cuda()


def test_coverage_is_exported_once():
    cov = backends.cuda_coverage()
    assert cov["head_dims"] == [32, 64, 96, 128] and cov["max_frames"] == 128
    assert cov["dtypes"] == ["bfloat16", "float16", "float32"] and cov["min_compute_capability"] == (8, 0)
    for name in ("cuda", "cuda_emu"):  # the same kernels, one coverage
        b = backends.get(name)
        assert b.covers(torch.bfloat16, 64, 128) and not b.covers(torch.float64, 64, 8)
        assert not b.covers(torch.bfloat16, 80, 8) and not b.covers(torch.float16, 64, 129)


@pytest.mark.parametrize("triton_ok", [True, False])
@pytest.mark.parametrize("device_ok", [True, False])
def test_auto_backend_choice_on_cuda_tensors(monkeypatch, triton_ok, device_ok):
    """Triton first (until the CUDA kernel has passed on hardware); the CUDA kernel where Triton
    cannot serve, it covers the case and the device can run it; else the reference."""
    monkeypatch.setattr(backends._C, "has_cuda", lambda: True)
    monkeypatch.setattr(backends.triton_package, "installed", lambda: triton_ok)
    monkeypatch.setattr(backends.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(backends, "_cuda_device_problem", lambda index: "" if device_ok else "too old")
    monkeypatch.setattr(backends.torch.cuda, "current_device", lambda: 0)
    cuda = torch.device("cuda")

    def choose(dtype, d, t):
        return backends.choose("auto", cuda, dtype, d, t).name

    if triton_ok:
        for dtype, d, t in [(torch.bfloat16, 64, 8), (torch.float32, 64, 8), (torch.bfloat16, 80, 8)]:
            assert choose(dtype, d, t) == "triton"
    else:
        covered = "cuda" if device_ok else "reference"
        assert choose(torch.bfloat16, 64, 8) == covered
        assert choose(torch.float16, 32, 128) == covered
        assert choose(torch.float32, 64, 8) == covered  # computed in bfloat16
        assert choose(torch.bfloat16, 80, 8) == "reference"  # head dim not compiled
        assert choose(torch.bfloat16, 64, 129) == "reference"  # too many frames
    assert choose(torch.float64, 64, 8) == "reference"


def test_device_problem_without_the_kernel():
    if _C.has_cuda():
        pytest.skip("this build has the CUDA kernel")
    assert "no CUDA kernel" in _C.cuda_device_problem(0)


# ---- GPU ---------------------------------------------------------------------------------


def cuda_inputs(b, h, t, l, d, dtype, device="cuda", seed=0):
    return sample_inputs(b, h, t, l, d, dtype, device=device, requires_grad=True, seed=seed)


@needs_gpu
@pytest.mark.parametrize("case", cases_for("cuda"), ids=str)
def test_matches_reference(case):
    check("cuda", case)


@needs_gpu
@pytest.mark.parametrize("layout", ["kmt", "kmct"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_canonical_shapes_bfloat16(name, layout):
    s = SHAPES[name]  # at B = 1, which keeps the float64 reference small
    check("cuda", Case(1, s.H, s.T, s.L, s.D, layout))


@needs_gpu
def test_device_is_checked():
    assert _C.cuda_device_problem(torch.cuda.current_device()) == ""
    assert "cuda" in kron_attn.available_backends()


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_lse_and_output_on_exactly_representable_inputs(dtype):
    """Inputs rounded to the dtype first, so the float64 result of the same numbers leaves only
    the kernel's own rounding: lse (never rounded to 16 bits) must agree to float32 accuracy."""
    t, l, d = 4, 45, 64
    q, k, v = (x.detach() for x in cuda_inputs(2, 3, t, l, d, dtype))
    lay = preset("kmct", t)
    out, lse = torch.ops.kron_attn.attention_fwd(q, k, v, lay, 0.125)
    assert lse.dtype == torch.float32
    qd, kd, vd = (x.double() for x in (q, k, v))
    mask = kron_attn.masks.dense_mask(t, l, lay, device="cuda")
    scores = (qd @ kd.transpose(-1, -2) * 0.125).masked_fill(~mask, float("-inf"))
    torch.testing.assert_close(lse.double(), scores.logsumexp(-1), rtol=0, atol=2e-4)
    ref = torch.softmax(scores, -1) @ vd
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=2e-2)


@needs_gpu
def test_unsupported_head_dim_error_and_auto_fallback():
    q, k, v = cuda_inputs(1, 2, 3, 10, 80, torch.bfloat16)
    with pytest.raises(RuntimeError, match="head dims 32, 64, 96 and 128"):
        kron_attn.attention(q, k, v, frames=3, backend="cuda")
    out = kron_attn.attention(q, k, v, frames=3)  # auto: Triton, else the reference
    exact = kron_attn.reference.attention(q.double(), k.double(), v.double(), 3, "kmt")
    assert_close_by_rule(out, kron_attn.reference.attention(q, k, v, 3, "kmt"), exact, "out")


@needs_gpu
def test_float64_is_refused_with_advice():
    q, k, v = cuda_inputs(1, 1, 2, 8, 64, torch.float64)
    with pytest.raises(RuntimeError, match="reference"):
        kron_attn.attention(q, k, v, frames=2, backend="cuda")


@needs_gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device():
    with torch.cuda.device(1):  # "cuda" tensors land on cuda:1
        check("cuda", Case(1, 2, 4, 50, 64, "kmct"))


@needs_gpu
def test_cuda_graph_capture():
    t, l, d = 4, 50, 64
    q, k, v = (x.detach() for x in cuda_inputs(2, 2, t, l, d, torch.bfloat16))
    lay = preset("kmt", t)
    dout = torch.randn_like(q)

    def step():
        out, lse = torch.ops.kron_attn.attention_fwd(q, k, v, lay, 0.125)
        return (out, lse) + torch.ops.kron_attn.attention_bwd(dout, q, k, v, out, lse, lay, 0.125)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        eager = step()  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    for x in (q, k, v):
        x.copy_(torch.randn_like(x))
    graph.replay()
    torch.cuda.synchronize()
    expected = step()
    for a, b in zip(captured, expected):
        assert torch.equal(a, b)
    assert not torch.equal(eager[0], expected[0])


@needs_gpu
def test_compile_fullgraph():
    block = kron_attn.KroneckerAttention(256, 4, frames=4, layout="kmct").cuda().to(torch.bfloat16)
    x = torch.randn(2, 4 * 20, 256, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    compiled = torch.compile(block, fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, block(x), atol=2e-2, rtol=2e-2)
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all()
