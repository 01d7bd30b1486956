"""Dense PyTorch reference of Kronecker-mask attention: the semantics every backend must match."""

from __future__ import annotations

import torch

from .layouts import LayoutLike
from .masks import dense_mask


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    frames: int,
    layout: LayoutLike,
    scale: float | None = None,
) -> torch.Tensor:
    """``softmax(scale * q kᵀ, masked) v`` with the ``(N, N)`` mask of ``layout``.

    q, k, v: ``(B, H, N, D)``, ``N = frames * L``; the math runs in the inputs' dtype (call it
    with float64 tensors for ground truth). Blocked scores are set to ``-inf`` (not added), so a
    non-finite key reaches only the rows that attend to it. Returns ``(B, H, N, D)``.
    """
    n, d = q.shape[-2], q.shape[-1]
    if n % frames:
        raise ValueError(f"sequence length N = {n} is not divisible by frames = {frames}")
    mask = dense_mask(frames, n // frames, layout, device=q.device)
    scores = (q @ k.transpose(-2, -1)) * (d**-0.5 if scale is None else scale)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
