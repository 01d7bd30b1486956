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
    return_lse: bool = False,
    prefix_tokens: int = 0,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``softmax(scale * q kᵀ, masked) v`` with the ``(N, N)`` mask of ``layout``.

    q, k, v: ``(B, H, N, D)``, ``N = prefix_tokens + frames * L``; the math runs in the inputs'
    dtype (call it with float64 tensors for ground truth). Blocked scores are set to ``-inf`` (not
    added), so a non-finite key reaches only the rows that attend to it. Returns ``(B, H, N, D)``,
    and with ``return_lse`` the row log-sum-exp of the allowed scaled scores ``(B, H, N)`` too
    (float32 for reduced precision, as the kernels give it; differentiable).
    """
    n, d = q.shape[-2], q.shape[-1]
    if (n - prefix_tokens) % frames or n < prefix_tokens:
        raise ValueError(f"sequence length N - prefix = {n - prefix_tokens} is not divisible by frames = {frames}")
    mask = dense_mask(frames, (n - prefix_tokens) // frames, layout, device=q.device, prefix=prefix_tokens)
    scores = ((q @ k.transpose(-2, -1)) * (d**-0.5 if scale is None else scale)).masked_fill(~mask, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v
    if not return_lse:
        return out
    lse_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
    return out, scores.to(lse_dtype).logsumexp(-1)
