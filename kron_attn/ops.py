"""The Python side of the registered ops: fake kernels, autograd and FLOP formulas.

Every backend with kernels has an op pair of one schema (csrc/kron_attn.cpp):
``<op>_fwd(q, k, v, layout, scale) -> (out, lse)`` and
``<op>_bwd(dout, q, k, v, out, lse, layout, scale, dlse=None) -> (dq, dk, dv)``; kron_attn/backends.py
calls :func:`register` for each. ``torch.ops.kron_attn.attention_fwd`` / ``attention_bwd`` are
the CPU and CUDA kernels' pair (one op, two dispatch keys).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

from . import _C  # noqa: F401  (loads the library that defines the ops)
from .layouts import Layout


def _lse_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _fwd_fake(q, k, v, layout, scale):
    torch._check(q.dim() == 4, lambda: f"q must be 4-D (B, H, N, D), got {q.dim()}-D")
    torch._check(k.shape == q.shape and v.shape == q.shape, lambda: "q, k, v must have the same shape")
    torch._check(layout.dim() == 2 and layout.shape[0] == layout.shape[1], lambda: "layout must be (T, T)")
    torch._check(q.shape[2] % layout.shape[0] == 0, lambda: "N must be divisible by frames")
    return torch.empty_like(q, memory_format=torch.contiguous_format), q.new_empty(
        q.shape[:3], dtype=_lse_dtype(q.dtype)
    )


def _bwd_fake(dout, q, k, v, out, lse, layout, scale, dlse=None):
    torch._check(dout.shape == q.shape, lambda: "dout must have the shape of q")
    return tuple(torch.empty_like(x, memory_format=torch.contiguous_format) for x in (q, k, v))


@torch.library.register_fake("kron_attn::block_schedule")
def _schedule_fake(layout, tokens, block_m, block_n):
    n = layout.shape[0] * tokens
    q_tiles, k_tiles = -(-n // block_m), -(-n // block_n)

    def lists(rows, cols):
        return [layout.new_empty(rows, dtype=torch.int32)] + [
            layout.new_empty(rows, max(cols, 1), dtype=torch.int32) for _ in range(2)
        ]

    return lists(q_tiles, k_tiles) + lists(k_tiles, q_tiles)


def _useful_pairs(n: int, layout: torch.Tensor) -> int:
    return Layout(layout).allowed_pairs(n // layout.shape[0])


def _fwd_flops(q, k, v, layout, scale, *args, out_val=None, **kwargs) -> int:
    """Useful work only: 4·B·H·D per attending pair (two matmuls), never the skipped pairs."""
    b, h, n, d = q.shape
    return 4 * b * h * d * _useful_pairs(n, layout)


def _bwd_flops(dout, q, k, v, out, lse, layout, scale, dlse=None, *args, out_val=None, **kwargs) -> int:
    """Five matmuls per attending pair: 2.5x the forward."""
    b, h, n, d = q.shape
    return 10 * b * h * d * _useful_pairs(n, layout)


def register(op: str) -> None:
    """The fake kernels, autograd and FLOP formulas of the op pair ``kron_attn::<op>_fwd`` /
    ``<op>_bwd`` (one schema for every backend's pair, csrc/kron_attn.cpp). Both outputs of the
    forward are differentiable (an unused one contributes nothing): the gradient of lse reaches the
    backward as ``dlse``."""
    fwd, bwd = getattr(torch.ops.kron_attn, f"{op}_fwd"), getattr(torch.ops.kron_attn, f"{op}_bwd")
    torch.library.register_fake(fwd.default, _fwd_fake)
    torch.library.register_fake(bwd.default, _bwd_fake)
    register_flop_formula(fwd, get_raw=True)(_fwd_flops)
    register_flop_formula(bwd, get_raw=True)(_bwd_flops)

    def setup_context(ctx, inputs, output):
        q, k, v, layout, scale = inputs
        out, lse = output
        ctx.save_for_backward(q, k, v, out, lse, layout)
        ctx.scale = scale

    def backward(ctx, dout, dlse):
        q, k, v, out, lse, layout = ctx.saved_tensors
        if dout is None:
            dout = torch.zeros_like(out)
        dq, dk, dv = bwd.default(dout, q, k, v, out, lse, layout, ctx.scale, dlse)
        return dq, dk, dv, None, None

    torch.library.register_autograd(fwd.default, backward, setup_context=setup_context)
