"""``KroneckerAttention``: multi-head self-attention over a clip's tokens with a frame layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .api import attention
from .layouts import LayoutLike, resolve


class KroneckerAttention(nn.Module):
    """Batch-first multi-head self-attention with Kronecker-mask sparsity.

    Parameters are named as in ``nn.MultiheadAttention`` (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj.weight``, ``out_proj.bias``), so CLIP's attention weights load as they are, and
    the output equals ``nn.MultiheadAttention(batch_first=True)`` called with
    ``kron_attn.masks.additive_mask(frames, L, layout)``.

    Args:
        embed_dim: C. num_heads: H (C must be divisible by H). frames: T.
        layout: preset name or ``(T, T)`` bool tensor. bias: projection biases.
    Input ``(B, N, C)`` with ``N = T * L`` tokens frame-major; output ``(B, N, C)``.
    """

    def __init__(self, embed_dim: int, num_heads: int, frames: int, layout: LayoutLike = "kmt", bias: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim = {embed_dim} is not divisible by num_heads = {num_heads}")
        self.embed_dim, self.num_heads, self.frames = embed_dim, num_heads, frames
        # A plain CPU attribute, not a buffer: the schedule is host data and must not follow .to(device).
        self.layout = resolve(layout, frames)
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # As nn.MultiheadAttention initialises itself.
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"expected input (B, N, {self.embed_dim}), got {tuple(x.shape)}")
        b, n, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        o = attention(q, k, v, frames=self.frames, layout=self.layout)
        return self.out_proj(o.transpose(1, 2).reshape(b, n, c))

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, frames={self.frames}"
