"""Launchers of the Triton kernels: the kernels of the ops ``kron_attn::triton_fwd`` /
``triton_bwd`` (schemas in csrc/kron_attn.cpp; fake kernels and autograd from kron_attn/backends.py)."""

from __future__ import annotations

import functools

import torch
import triton

from .. import _C, backends
from . import interpreting
from .kernels import LOG2E, bwd_dkdv_kernel, bwd_dq_kernel, fwd_kernel

# The kind block_schedule gives tiles that need an element mask (csrc/schedule.h).
PARTIAL = _C.tile_kinds()["partial"]

_KERNELS = {k.__name__: k for k in (fwd_kernel, bwd_dkdv_kernel, bwd_dq_kernel)}
# Every config the autotuner knows; configs() says which of them may run where.
_ALL = [triton.Config({}, num_warps=w, num_stages=s) for w in (4, 8) for s in (2, 3)]
_EVERY = {(4, 2), (4, 3), (8, 2), (8, 3)}
_EIGHT = {(8, 2), (8, 3)}

# Measured with the static profile (benchmarks/static_profile, compiled for sm_80 and sm_90 with no
# GPU): per family (80: mma.sync GPUs, 90: Hopper's warpgroup mma) and BLOCK_D, the largest tiles
# (BLOCK_M queries, BLOCK_N keys) of the forward and of the backward for which some (warps,
# stages) compiles without spilling, on sm_90 with warpgroup mma where any tile allows it (not for
# the dK/dV kernel at BLOCK_D >= 128, nor at 256); and those configs, per kernel.
_TILES = {
    (80, "fwd"): {16: (128, 64), 32: (128, 64), 64: (64, 64), 128: (32, 32), 256: (16, 32)},
    (80, "bwd"): {16: (64, 64), 32: (64, 64), 64: (64, 32), 128: (64, 32), 256: (32, 32)},
    (90, "fwd"): {16: (128, 64), 32: (128, 64), 64: (128, 64), 128: (64, 64), 256: (16, 32)},
    (90, "bwd"): {16: (64, 64), 32: (64, 64), 64: (64, 64), 128: (64, 32), 256: (32, 32)},
}
_CONFIGS = {
    (80, "fwd_kernel"): {16: {(4, 2), (4, 3)}, 32: _EIGHT, 64: _EIGHT, 128: _EIGHT, 256: _EVERY},
    (80, "bwd_dkdv_kernel"): {16: _EVERY, 32: _EVERY, 64: _EVERY, 128: _EIGHT, 256: _EIGHT},
    (80, "bwd_dq_kernel"): {16: _EVERY, 32: _EVERY, 64: _EIGHT, 128: _EIGHT, 256: _EVERY},
    (90, "fwd_kernel"): {16: _EVERY, 32: _EIGHT, 64: _EIGHT, 128: _EIGHT, 256: _EVERY},
    (90, "bwd_dkdv_kernel"): {16: _EVERY, 32: _EVERY, 64: _EIGHT, 128: _EIGHT, 256: _EIGHT},
    (90, "bwd_dq_kernel"): {16: _EVERY, 32: _EVERY, 64: _EVERY, 128: _EIGHT, 256: _EIGHT},
}


def _family(arch: int) -> int:
    """90 for Hopper (warpgroup mma); 80 for every other architecture (mma.sync)."""
    return 90 if 90 <= arch < 100 else 80


def tile_sizes(kernel: str, block_d: int, arch: int) -> tuple[int, int]:
    """(BLOCK_M, BLOCK_N) of a kernel on an architecture (sm_XY as XY): queries x keys per tile. The
    block schedule is built for them, so the autotuner does not vary them; both backward kernels
    share theirs (one schedule serves both directions)."""
    return _TILES[(_family(arch), "fwd" if kernel == "fwd_kernel" else "bwd")][block_d]


def configs(kernel: str, block_d: int, arch: int) -> list[triton.Config]:
    """The autotune configs a kernel may run with for a head dim on an architecture."""
    allowed = _CONFIGS[(_family(arch), kernel)][block_d]
    return [c for c in _ALL if (c.num_warps, c.num_stages) in allowed]


def _pruner(kernel: str):
    """The autotuner's early prune: of its configs, those configs() allows on this device."""

    def prune(candidates, named_args, **kwargs):
        major, minor = torch.cuda.get_device_capability(named_args["Q"].device)
        allowed = {(c.num_warps, c.num_stages) for c in configs(kernel, kwargs["BLOCK_D"], 10 * major + minor)}
        return [c for c in candidates if (c.num_warps, c.num_stages) in allowed]

    return prune


_tuned = {
    name: triton.autotune(_ALL, key=["N", "D"], prune_configs_by={"early_config_prune": _pruner(name)})(kernel)
    for name, kernel in _KERNELS.items()
}


def _launch(kernel, grid, *args, **meta):
    if interpreting():
        kernel[grid](*args, **meta)
    else:
        _tuned[kernel.__name__][grid](*args, **meta)


def _blocks(kernel: str, d: int, device: torch.device) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_D): small tiles for the CPU interpreter, tensor-core tiles on GPUs."""
    block_d = max(16, triton.next_power_of_2(d))
    if interpreting():
        return 16, 16, block_d
    major, minor = torch.cuda.get_device_capability(device)
    return (*tile_sizes(kernel, block_d, 10 * major + minor), block_d)


@functools.lru_cache(maxsize=64)
def _schedule(layout_bytes: bytes, frames: int, tokens: int, bm: int, bn: int, device: str):
    layout = torch.frombuffer(bytearray(layout_bytes), dtype=torch.bool).view(frames, frames)
    parts = torch.ops.kron_attn.block_schedule(layout, tokens, bm, bn)
    return layout.to(torch.uint8).to(device), [p.to(device) for p in parts]


def _prepare(layout: torch.Tensor, kernel: str, n: int, d: int, device: torch.device):
    frames = layout.shape[0]
    bm, bn, bd = _blocks(kernel, d, device)
    lay, sched = _schedule(layout.numpy().tobytes(), frames, n // frames, bm, bn, str(device))
    return lay, sched, (bm, bn, bd), frames, n // frames


def _kernel_inputs(*xs):
    """In the dtype the backend computes in (float32 as bfloat16 on GPUs: the tensor cores at
    bfloat16's accuracy, as the CUDA kernel; bfloat16 rather than float16 because no float32 input
    overflows it), with a contiguous last dimension."""
    dt = backends.get("triton").compute_dtype(xs[0].dtype)
    xs = [x.to(dt) for x in xs]
    return [x if x.stride(-1) == 1 else x.contiguous() for x in xs]


def _strides(*xs):
    return [s for x in xs for s in x.stride()[:3]]


@torch.library.register_kernel("kron_attn::triton_fwd", ("cuda", "cpu"))
def triton_fwd(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    given, dtypes = q.dtype, backends.get("triton").dtypes
    if given not in dtypes:
        raise TypeError(f"the triton backend supports {', '.join(map(str, dtypes))}, got {given}")
    q, k, v = _kernel_inputs(q, k, v)
    b, h, n, d = q.shape
    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.empty(b, h, n, dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out.to(given), lse
    lay, (qc, qt, qk, _, _, _), (bm, bn, bd), frames, tokens = _prepare(layout, "fwd_kernel", n, d, q.device)
    grid = (triton.cdiv(n, bm), b * h)
    _launch(
        fwd_kernel, grid, q, k, v, out, lse, lay, qc, qt, qk, *_strides(q, k, v, out),
        h, n, frames, tokens, d, qt.shape[1], scale * LOG2E.value,
        BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, PARTIAL=PARTIAL,
    )  # fmt: skip
    return out.to(given), lse


@torch.library.register_kernel("kron_attn::triton_bwd", ("cuda", "cpu"))
def triton_bwd(dout, q, k, v, out, lse, layout, scale: float, dlse=None) -> tuple[torch.Tensor, ...]:
    given = q.dtype
    dout, q, k, v = _kernel_inputs(dout, q, k, v)
    b, h, n, d = q.shape
    dq, dk, dv = (torch.zeros(b, h, n, d, dtype=torch.float32, device=q.device) for _ in range(3))
    if dq.numel() > 0:
        delta = (dout.float() * out.float()).sum(-1)  # less the gradient of lse: dS = P (dP - delta)
        delta = (delta if dlse is None else delta - dlse.float()).contiguous()
        lay, (qc, qt, qk, kc, kt, kk), (bm, bn, bd), frames, tokens = _prepare(layout, "bwd_dq_kernel", n, d, q.device)
        common = (h, n, frames, tokens, d)
        scales = (scale * LOG2E.value, scale)
        meta = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, PARTIAL=PARTIAL)
        strides = _strides(q, k, v, dout)
        _launch(
            bwd_dkdv_kernel, (triton.cdiv(n, bn), b * h), q, k, v, dout, lse, delta, dk, dv, lay, kc, kt, kk,
            *strides, *common, kt.shape[1], *scales, **meta,
        )  # fmt: skip
        _launch(
            bwd_dq_kernel, (triton.cdiv(n, bm), b * h), q, k, v, dout, lse, delta, dq, lay, qc, qt, qk,
            *strides, *common, qt.shape[1], *scales, **meta,
        )  # fmt: skip
    return dq.to(given), dk.to(given), dv.to(given)
