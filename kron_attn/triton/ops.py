"""Launchers of the Triton kernels, registered as ops with autograd."""

from __future__ import annotations

import functools

import torch
import triton

from .. import _C
from .. import ops as kron_ops
from . import interpreting
from .kernels import bwd_dkdv_kernel, bwd_dq_kernel, fwd_kernel

# The kind block_schedule gives tiles that need an element mask (csrc/schedule.h).
_PARTIAL = _C.tile_kinds()["partial"]

# Warps and pipeline stages are tuned per (N, D) on the GPU; tile sizes come from _blocks()
# because the block schedule is built for them.
_TUNING = [triton.Config({}, num_warps=w, num_stages=s) for w in (4, 8) for s in (2, 3, 4)]
_tuned = {
    kernel: triton.autotune(_TUNING, key=["N", "D"])(kernel) for kernel in (fwd_kernel, bwd_dkdv_kernel, bwd_dq_kernel)
}


def _launch(kernel, grid, *args, **meta):
    if interpreting():
        kernel[grid](*args, **meta)
    else:
        _tuned[kernel][grid](*args, **meta)


def _blocks(n: int, d: int) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_D): small tiles for the CPU interpreter, tensor-core tiles on GPUs."""
    block_d = max(16, triton.next_power_of_2(d))
    if interpreting():
        return 16, 16, block_d
    return (128, 64, block_d) if block_d <= 64 else (64, 64, block_d)


@functools.lru_cache(maxsize=64)
def _schedule(layout_bytes: bytes, frames: int, tokens: int, bm: int, bn: int, device: str):
    layout = torch.frombuffer(bytearray(layout_bytes), dtype=torch.bool).view(frames, frames)
    parts = torch.ops.kron_attn.block_schedule(layout, tokens, bm, bn)
    return layout.to(torch.uint8).to(device), [p.to(device) for p in parts]


def _prepare(layout: torch.Tensor, n: int, d: int, device: torch.device):
    frames = layout.shape[0]
    bm, bn, bd = _blocks(n, d)
    lay, sched = _schedule(layout.numpy().tobytes(), frames, n // frames, bm, bn, str(device))
    return lay, sched, (bm, bn, bd), frames, n // frames


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"


def _last_dim_contiguous(*xs):
    return [x if x.stride(-1) == 1 else x.contiguous() for x in xs]


def _strides(*xs):
    return [s for x in xs for s in x.stride()[:3]]


@torch.library.custom_op("kron_attn::triton_fwd", mutates_args=())
def triton_fwd(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    q, k, v = _last_dim_contiguous(q, k, v)
    b, h, n, d = q.shape
    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.empty(b, h, n, dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out, lse
    lay, (qc, qt, qk, _, _, _), (bm, bn, bd), frames, tokens = _prepare(layout, n, d, q.device)
    grid = (triton.cdiv(n, bm), b * h)
    _launch(
        fwd_kernel, grid, q, k, v, out, lse, lay, qc, qt, qk, *_strides(q, k, v, out),
        h, n, frames, tokens, d, qt.shape[1], scale * 1.4426950408889634,
        BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, PRECISION=_precision(q.dtype), PARTIAL=_PARTIAL,
    )  # fmt: skip
    return out, lse


@triton_fwd.register_fake
def _(q, k, v, layout, scale):
    return torch.empty_like(q, memory_format=torch.contiguous_format), q.new_empty(q.shape[:3], dtype=torch.float32)


@torch.library.custom_op("kron_attn::triton_bwd", mutates_args=())
def triton_bwd(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    layout: torch.Tensor,
    scale: float,
    dlse: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dout, q, k, v = _last_dim_contiguous(dout, q, k, v)
    b, h, n, d = q.shape
    dq, dk, dv = (torch.zeros(b, h, n, d, dtype=torch.float32, device=q.device) for _ in range(3))
    if dq.numel() > 0:
        delta = (dout.float() * out.float()).sum(-1)  # less the gradient of lse: dS = P (dP - delta)
        delta = (delta if dlse is None else delta - dlse.float()).contiguous()
        lay, (qc, qt, qk, kc, kt, kk), (bm, bn, bd), frames, tokens = _prepare(layout, n, d, q.device)
        common = (h, n, frames, tokens, d)
        scales = (scale * 1.4426950408889634, scale)
        meta = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, PRECISION=_precision(q.dtype), PARTIAL=_PARTIAL)
        strides = _strides(q, k, v, dout)
        _launch(
            bwd_dkdv_kernel, (triton.cdiv(n, bn), b * h), q, k, v, dout, lse, delta, dk, dv, lay, kc, kt, kk,
            *strides, *common, kt.shape[1], *scales, **meta,
        )  # fmt: skip
        _launch(
            bwd_dq_kernel, (triton.cdiv(n, bm), b * h), q, k, v, dout, lse, delta, dq, lay, qc, qt, qk,
            *strides, *common, qt.shape[1], *scales, **meta,
        )  # fmt: skip
    return dq.to(q.dtype), dk.to(q.dtype), dv.to(q.dtype)


@triton_bwd.register_fake
def _(dout, q, k, v, out, lse, layout, scale, dlse=None):
    return tuple(torch.empty_like(x, memory_format=torch.contiguous_format) for x in (q, k, v))


kron_ops.register_attention_autograd(triton_fwd, triton_bwd)
