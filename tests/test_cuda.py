"""The CUDA kernel (csrc/cuda) against the float64 reference, per DESIGN §6.

The GPU cases skip with a reason when no GPU (or no compiled kernel) is present; the build and
backend-choice checks at the top run everywhere.
"""

import os

import pytest
import torch
from conftest import assert_close_by_rule, sample_inputs

import kron_attn
from kron_attn import _C, api, ops
from kron_attn.layouts import preset

PRESETS = ["kmt", "kmct", "joint", "frame"]
LOW = [torch.bfloat16, torch.float16]

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


@pytest.mark.parametrize("triton_ok", [True, False])
def test_auto_backend_choice_on_cuda_tensors(monkeypatch, triton_ok):
    monkeypatch.setattr(api._C, "has_cuda", lambda: True)
    monkeypatch.setattr(api.triton_backend, "available", lambda device=None: triton_ok)
    cuda = torch.device("cuda")
    fallback = "triton" if triton_ok else "reference"
    assert api._choose("auto", cuda, torch.bfloat16, 64, 8) == "cuda"
    assert api._choose("auto", cuda, torch.float16, 32, 128) == "cuda"
    assert api._choose("auto", cuda, torch.bfloat16, 80, 8) == fallback  # head dim not compiled
    assert api._choose("auto", cuda, torch.bfloat16, 64, 129) == fallback  # too many frames
    # float32 runs in bfloat16 on the CUDA kernel: Triton keeps it exact when present.
    assert api._choose("auto", cuda, torch.float32, 64, 8) == ("triton" if triton_ok else "cuda")
    assert api._choose("auto", cuda, torch.float64, 64, 8) == "reference"


# ---- GPU ---------------------------------------------------------------------------------


def cuda_inputs(b, h, t, l, d, dtype, device="cuda", seed=0):
    return sample_inputs(b, h, t, l, d, dtype, device=device, requires_grad=True, seed=seed)


def grads(out, inputs, seed=1):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.autograd.grad(out, inputs, g.to(device=out.device, dtype=out.dtype))


def check_by_rule(b, h, t, l, d, layout, dtype, device="cuda", scale=None):
    """Forward and gradients of the CUDA kernel vs float64, by the 2x rule of DESIGN §6."""
    q, k, v = cuda_inputs(b, h, t, l, d, dtype, device)
    q64, k64, v64 = (x.detach().double().requires_grad_() for x in (q, k, v))
    exact = kron_attn.reference.attention(q64, k64, v64, t, layout, scale)
    ours = kron_attn.attention(q, k, v, frames=t, layout=layout, scale=scale, backend="cuda")
    lowp = kron_attn.reference.attention(q, k, v, t, layout, scale)
    assert ours.dtype == dtype and ours.device == q.device
    assert torch.isfinite(ours).all()
    assert_close_by_rule(ours, lowp, exact, "out")
    g_exact = grads(exact, (q64, k64, v64))
    for name, a, c, e in zip("qkv", grads(ours, (q, k, v)), grads(lowp, (q, k, v)), g_exact):
        assert torch.isfinite(a).all(), f"d{name} not finite"
        assert_close_by_rule(a, c, e, f"d{name}")


ODD_SHAPES = [
    (1, 2, 1, 1, 64),  # one token
    (2, 2, 4, 1, 32),  # L = 1: every token its own frame
    (1, 2, 1, 197, 64),  # T = 1
    (2, 3, 3, 197, 96),
    (1, 2, 5, 50, 128),
    (2, 1, 7, 33, 32),
    (1, 1, 3, 257, 64),
    (1, 2, 16, 9, 128),  # tiles spanning many frames
]


@needs_gpu
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("layout", PRESETS)
@pytest.mark.parametrize("b,h,t,l,d", ODD_SHAPES)
def test_presets_odd_shapes(b, h, t, l, d, layout, dtype):
    check_by_rule(b, h, t, l, d, layout, dtype)


CANONICAL = {  # DESIGN §6 shapes with B = 1 to keep the float64 reference small
    "b16-8f": (1, 12, 8, 197, 64),
    "b16-16f": (1, 12, 16, 197, 64),
    "b16-32f": (1, 4, 32, 197, 64),
    "b32-8f": (1, 12, 8, 50, 64),
    "l14-8f": (1, 16, 8, 257, 64),
}


@needs_gpu
@pytest.mark.parametrize("layout", ["kmt", "kmct"])
@pytest.mark.parametrize("name", list(CANONICAL))
def test_canonical_shapes_bfloat16(name, layout):
    check_by_rule(*CANONICAL[name], layout, torch.bfloat16)


@needs_gpu
@pytest.mark.parametrize("d", [32, 64, 96, 128])
def test_random_custom_layouts(d):
    g = torch.Generator().manual_seed(d)
    for t, l in [(6, 37), (11, 20), (128, 2)]:
        layout = torch.rand(t, t, generator=g) < 0.4
        check_by_rule(1, 2, t, l, d, layout, torch.bfloat16, scale=0.3)


@needs_gpu
@pytest.mark.parametrize("dtype", LOW)
def test_lse_and_output_on_exactly_representable_inputs(dtype):
    """Inputs rounded to the dtype first, so the float64 result of the same numbers leaves only
    the kernel's own rounding: lse (never rounded to 16 bits) must agree to float32 accuracy."""
    t, l, d = 4, 45, 64
    q, k, v = (x.detach() for x in cuda_inputs(2, 3, t, l, d, dtype))
    lay = preset("kmct", t)
    out, lse = ops.attention_fwd(q, k, v, lay, 0.125)
    assert lse.dtype == torch.float32
    qd, kd, vd = (x.double() for x in (q, k, v))
    mask = kron_attn.masks.dense_mask(t, l, lay, device="cuda")
    scores = (qd @ kd.transpose(-1, -2) * 0.125).masked_fill(~mask, float("-inf"))
    torch.testing.assert_close(lse.double(), scores.logsumexp(-1), rtol=0, atol=2e-4)
    ref = torch.softmax(scores, -1) @ vd
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=2e-2)


@needs_gpu
def test_float32_runs_in_bfloat16():
    """float32 is computed in bfloat16 (csrc/cuda/attention_cuda.cu): bfloat16 accuracy by the
    rule, measured against the reference computed in bfloat16."""
    t, l, d = 4, 50, 64
    q, k, v = cuda_inputs(2, 2, t, l, d, torch.float32)
    exact = kron_attn.reference.attention(q.double(), k.double(), v.double(), t, "kmt")
    ours = kron_attn.attention(q, k, v, frames=t, layout="kmt", backend="cuda")
    bf = kron_attn.reference.attention(*(x.bfloat16() for x in (q, k, v)), t, "kmt")
    assert ours.dtype == torch.float32
    assert_close_by_rule(ours, bf, exact, "out")
    ours.sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in (q, k, v))


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
def test_strided_and_misaligned_inputs():
    t, l, d, h = 3, 40, 64, 4
    base = torch.randn(2, t * l, 3, h, d, device="cuda", dtype=torch.bfloat16)  # fused qkv projection
    q, k, v = (base[:, :, i].transpose(1, 2) for i in range(3))
    exact = kron_attn.reference.attention(q.double(), k.double(), v.double(), t, "kmt")
    out = kron_attn.attention(q, k, v, frames=t, backend="cuda")
    assert_close_by_rule(out, kron_attn.reference.attention(q, k, v, t, "kmt"), exact, "out (strided)")
    flat = torch.randn(2 * h * t * l * d + 1, device="cuda", dtype=torch.bfloat16)
    odd = flat[1:].view(2, h, t * l, d)  # 2-byte offset: not 16-byte aligned
    exact = kron_attn.reference.attention(odd.double(), odd.double(), odd.double(), t, "kmct")
    out = kron_attn.attention(odd, odd, odd, frames=t, layout="kmct", backend="cuda")
    assert_close_by_rule(out, kron_attn.reference.attention(odd, odd, odd, t, "kmct"), exact, "out (misaligned)")


@needs_gpu
def test_backward_is_deterministic():
    q, k, v = cuda_inputs(2, 4, 8, 197, 64, torch.bfloat16)
    out = kron_attn.attention(q, k, v, frames=8, backend="cuda")
    g = torch.randn_like(out)
    first = torch.autograd.grad(out, (q, k, v), g, retain_graph=True)
    second = torch.autograd.grad(out, (q, k, v), g)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@needs_gpu
def test_empty_batch():
    q = torch.randn(0, 2, 6, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    out = kron_attn.attention(q, q, q, frames=3, backend="cuda")
    out.sum().backward()
    assert out.shape == q.shape and q.grad.shape == q.shape


@needs_gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device():
    check_by_rule(1, 2, 4, 50, 64, "kmct", torch.bfloat16, device="cuda:1")


@needs_gpu
def test_cuda_graph_capture():
    t, l, d = 4, 50, 64
    q, k, v = (x.detach() for x in cuda_inputs(2, 2, t, l, d, torch.bfloat16))
    lay = preset("kmt", t)
    dout = torch.randn_like(q)

    def step():
        out, lse = ops.attention_fwd(q, k, v, lay, 0.125)
        return (out, lse) + ops.attention_bwd(dout, q, k, v, out, lse, lay, 0.125)

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


@needs_gpu
def test_opcheck():
    q, k, v = (x.detach() for x in cuda_inputs(1, 2, 3, 20, 64, torch.bfloat16))
    lay = preset("kmt", 3)
    torch.library.opcheck(torch.ops.kron_attn.attention_fwd.default, (q, k, v, lay, 0.125))
    out, lse = ops.attention_fwd(q, k, v, lay, 0.125)
    args = (torch.randn_like(out), q, k, v, out, lse, lay, 0.125)
    torch.library.opcheck(torch.ops.kron_attn.attention_bwd.default, args)


# ---- everywhere: the fragment addressing of csrc/cuda/device_utils.h, emulated ------------


def _ldmatrix_x4(smem, row_col_of_lane, trans=False):
    """ldmatrix.x4: lanes 8i..8i+7 address the rows of matrix i; register i of lane l receives
    (row l // 4, cols 2(l % 4), +1) of matrix i (of its transpose with .trans)."""
    regs = torch.zeros(32, 4, 2, dtype=torch.float64)
    for i in range(4):
        mat = torch.stack([smem[r, c : c + 8] for r, c in (row_col_of_lane(8 * i + j) for j in range(8))])
        mat = mat.T if trans else mat
        for lane in range(32):
            regs[lane, i] = mat[lane // 4, 2 * (lane % 4) : 2 * (lane % 4) + 2]
    return regs


def _mma_m16n8k16(acc, a, b0, b1):
    """acc (32, 4) += A B with the PTX fragment tables of mma.m16n8k16 (f32 accumulators)."""
    A, B = torch.zeros(16, 16, dtype=torch.float64), torch.zeros(16, 8, dtype=torch.float64)
    for lane in range(32):
        g, t = lane // 4, 2 * (lane % 4)
        A[g, t : t + 2], A[g + 8, t : t + 2], A[g, t + 8 : t + 10], A[g + 8, t + 8 : t + 10] = a[lane]
        B[t : t + 2, g], B[t + 8 : t + 10, g] = b0[lane], b1[lane]
    C = A @ B
    for lane in range(32):
        g, t = lane // 4, 2 * (lane % 4)
        acc[lane] += torch.stack([C[g, t], C[g, t + 1], C[g + 8, t], C[g + 8, t + 1]])


def _dense(acc):
    out = torch.zeros(16, acc.shape[1] * 8, dtype=torch.float64)
    for lane in range(32):
        g, t = lane // 4, 2 * (lane % 4)
        for j in range(acc.shape[1]):
            out[g, 8 * j + t : 8 * j + t + 2] = acc[lane, j, 0:2]
            out[g + 8, 8 * j + t : 8 * j + t + 2] = acc[lane, j, 2:4]
    return out


def test_fragment_addressing_emulation():
    """The per-lane ldmatrix addresses and register order of warp_gemm_abt and warp_gemm_rega_b
    (device_utils.h), mirrored here, give A Bᵀ and (A Bᵀ) C under an emulation of ldmatrix and
    mma.m16n8k16 written from the PTX fragment tables."""
    g = torch.Generator().manual_seed(0)
    n, k = 32, 32
    a, b, c = (torch.randn(r, k, generator=g, dtype=torch.float64) for r in (16, n, n))
    s = torch.zeros(32, n // 8, 4, dtype=torch.float64)
    for kk in range(k // 16):
        af = _ldmatrix_x4(a, lambda lane, kk=kk: (lane % 16, (lane // 16) * 8 + kk * 16))
        for nn in range(n // 16):
            bf = _ldmatrix_x4(
                b, lambda lane, kk=kk, nn=nn: (lane % 8 + (lane // 16) * 8 + nn * 16, (lane // 8) % 2 * 8 + kk * 16)
            )
            _mma_m16n8k16(s[:, 2 * nn], af, bf[:, 0], bf[:, 1])
            _mma_m16n8k16(s[:, 2 * nn + 1], af, bf[:, 2], bf[:, 3])
    torch.testing.assert_close(_dense(s), a @ b.T)
    o = torch.zeros(32, k // 8, 4, dtype=torch.float64)
    for kk in range(n // 16):  # the C fragments of S repacked as A registers (P V)
        af = torch.stack([s[:, 2 * kk, 0:2], s[:, 2 * kk, 2:4], s[:, 2 * kk + 1, 0:2], s[:, 2 * kk + 1, 2:4]], 1)
        for nn in range(k // 16):
            bf = _ldmatrix_x4(
                c, lambda lane, kk=kk, nn=nn: (lane % 16 + kk * 16, (lane // 16) * 8 + nn * 16), trans=True
            )
            _mma_m16n8k16(o[:, 2 * nn], af, bf[:, 0], bf[:, 1])
            _mma_m16n8k16(o[:, 2 * nn + 1], af, bf[:, 2], bf[:, 3])
    torch.testing.assert_close(_dense(o), a @ b.T @ c)
