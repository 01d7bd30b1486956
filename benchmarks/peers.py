"""The implementations we are measured against, on the canonical shapes (benchmarks/shapes.py).

Every implementation is built by ``make(name, shape, layout, mode, dtype, device)`` into a
no-argument callable that runs one forward (``mode="fwd"``) or forward+backward (``"fwdbwd"``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import kron_attn
from kron_attn import masks

from .shapes import Shape

IMPLS = ("ours", "mha", "sdpa_mask", "flex", "sdpa_dense")
DESCRIPTION = {
    "ours": "kron_attn (this library)",
    "mha": "nn.MultiheadAttention + additive -inf Kronecker mask (module level, vs KroneckerAttention)",
    "sdpa_mask": "F.scaled_dot_product_attention with the boolean mask",
    "flex": "FlexAttention (torch.compile) with a BlockMask from the same rule",
    "sdpa_dense": "F.scaled_dot_product_attention, no mask (no-sparsity ceiling)",
}


def allowed_pairs(shape: Shape, layout: str) -> int:
    return kron_attn.Layout.of(layout, shape.T).allowed_pairs(shape.L)


def flops(shape: Shape, pairs: int, mode: str) -> float:
    """4·B·H·D·pairs for the forward; the backward costs 2.5x that."""
    fwd = 4.0 * shape.B * shape.H * shape.D * pairs
    return fwd * (3.5 if mode == "fwdbwd" else 1.0)


def make(
    impl: str, shape: Shape, layout: str, mode: str, dtype=torch.float32, device="cpu", seed: int = 0
) -> Callable[[], None]:
    """A callable running one pass of ``impl``; raises NotImplementedError where a peer cannot."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    grad = mode == "fwdbwd"
    s = shape

    if impl == "mha":
        c = s.H * s.D
        x = torch.randn(s.B, s.N, c, generator=g).to(device, dtype).requires_grad_(grad)
        theirs = nn.MultiheadAttention(c, s.H, batch_first=True).to(device, dtype)
        mask = masks.additive_mask(s.T, s.L, layout, dtype=dtype, device=device)
        return _run(lambda: theirs(x, x, x, attn_mask=mask, need_weights=False)[0], grad)
    if impl == "ours_module":
        c = s.H * s.D
        x = torch.randn(s.B, s.N, c, generator=g).to(device, dtype).requires_grad_(grad)
        ours = kron_attn.KroneckerAttention(c, s.H, frames=s.T, layout=layout).to(device, dtype)
        return _run(lambda: ours(x), grad)

    q, k, v = (torch.randn(s.B, s.H, s.N, s.D, generator=g).to(device, dtype).requires_grad_(grad) for _ in range(3))
    if impl == "ours":
        return _run(lambda: kron_attn.attention(q, k, v, frames=s.T, layout=layout), grad)
    if impl == "sdpa_mask":
        mask = masks.dense_mask(s.T, s.L, layout, device=device)
        return _run(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), grad)
    if impl == "sdpa_dense":
        return _run(lambda: F.scaled_dot_product_attention(q, k, v), grad)
    if impl == "flex":
        if grad and torch.device(device).type == "cpu":
            raise NotImplementedError("FlexAttention has no CPU backward")
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        block_mask = create_block_mask(masks.flex_mask_mod(s.L, layout), None, None, s.N, s.N, device=device)
        compiled = torch.compile(flex_attention, dynamic=False)
        return _run(lambda: compiled(q, k, v, block_mask=block_mask), grad)
    raise ValueError(f"unknown implementation {impl!r}")


def _run(fn: Callable[[], torch.Tensor], grad: bool) -> Callable[[], None]:
    if grad:

        def step():
            fn().sum().backward()

    else:

        def step():
            with torch.no_grad():
                fn()

    return step
