"""``KroneckerAttention``: multi-head self-attention over a clip's tokens with a frame layout, and
``swap_attention``, which puts it in place of a model's ``nn.MultiheadAttention`` modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .api import attention
from .layouts import LayoutLike, resolve


class KroneckerAttention(nn.Module):
    """Multi-head self-attention with Kronecker-mask sparsity.

    Parameters are named as in ``nn.MultiheadAttention`` (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj.weight``, ``out_proj.bias``), so CLIP's attention weights load as they are, and
    the output equals ``nn.MultiheadAttention`` called with
    ``kron_attn.masks.additive_mask(frames, L, layout, prefix=prefix_tokens)``.

    Args:
        embed_dim: C. num_heads: H (C must be divisible by H). frames: T.
        layout: preset name, ``(T, T)`` bool tensor or :class:`kron_attn.Layout`. bias: projection biases.
        prefix_tokens: P global tokens before the frame tokens (a class token...).
        batch_first: inputs ``(B, N, C)`` (True) or ``(N, B, C)``.

    Called as ``module(x)`` it returns the output; called as ``nn.MultiheadAttention`` is,
    ``module(x, x, x, need_weights=False)``, it returns ``(output, None)``. ``N = P + T * L``
    tokens, the frame tokens frame-major.
    """

    # nn.TransformerEncoderLayer (eval, batch first) runs a fused kernel that reads in_proj_weight and
    # never calls self_attn; it skips that fast path when this is False, so the layout is applied.
    _qkv_same_embed_dim = False

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        frames: int,
        layout: LayoutLike = "kmt",
        bias: bool = True,
        prefix_tokens: int = 0,
        batch_first: bool = True,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim = {embed_dim} is not divisible by num_heads = {num_heads}")
        self.embed_dim, self.num_heads, self.frames = embed_dim, num_heads, frames
        self.prefix_tokens, self.batch_first = prefix_tokens, batch_first
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

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, None]:
        mha_call = key is not None or value is not None
        if mha_call:
            if key is not query or value is not query:
                raise ValueError("KroneckerAttention is self-attention: key and value must be the query tensor itself")
            if need_weights:
                raise ValueError(
                    "KroneckerAttention does not compute attention weights; call it with need_weights=False"
                )
            if attn_mask is not None or key_padding_mask is not None or is_causal:
                raise ValueError(
                    "KroneckerAttention takes no attn_mask, key_padding_mask or is_causal: its frame layout is the mask"
                )
        x = query if self.batch_first else query.transpose(0, 1)
        if x.dim() != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"expected input (B, N, {self.embed_dim}) (batch first), got {tuple(x.shape)}")
        b, n, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        o = attention(q, k, v, frames=self.frames, layout=self.layout, prefix_tokens=self.prefix_tokens)
        out = self.out_proj(o.transpose(1, 2).reshape(b, n, c))
        out = out if self.batch_first else out.transpose(0, 1)
        return (out, None) if mha_call else out

    @classmethod
    def from_multihead_attention(
        cls, mha: nn.MultiheadAttention, frames: int, layout: LayoutLike = "kmt", prefix_tokens: int = 0
    ) -> KroneckerAttention:
        """A KroneckerAttention with ``mha``'s weights, dtype, device and batch order."""
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError(
                "cannot replace an nn.MultiheadAttention with separate key/value dimensions, bias_k/bias_v or "
                "add_zero_attn by KroneckerAttention"
            )
        if mha.dropout:
            raise ValueError(f"cannot replace an nn.MultiheadAttention with attention dropout ({mha.dropout})")
        w = mha.in_proj_weight
        new = cls(
            mha.embed_dim, mha.num_heads, frames, layout, mha.in_proj_bias is not None, prefix_tokens, mha.batch_first
        ).to(device=w.device, dtype=w.dtype)
        new.load_state_dict(mha.state_dict(), strict=True)
        return new.train(mha.training)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, frames={self.frames}, "
            f"prefix_tokens={self.prefix_tokens}, batch_first={self.batch_first}"
        )


def swap_attention(model: nn.Module, frames: int, layout: LayoutLike = "kmt", prefix_tokens: int = 0) -> nn.Module:
    """Replaces every ``nn.MultiheadAttention`` in ``model`` (in place) by a KroneckerAttention with
    the same weights; returns ``model``. The modules must be self-attention over ``prefix_tokens +
    frames * L`` tokens and be called with ``need_weights=False`` and no mask (apply it to the part of a
    model that attends over clips, e.g. a CLIP's ``visual``)."""
    swapped = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.MultiheadAttention):
                new = KroneckerAttention.from_multihead_attention(child, frames, layout, prefix_tokens)
                setattr(module, child_name, new)
                swapped += 1
    if swapped == 0:
        raise ValueError("swap_attention found no nn.MultiheadAttention in the model")
    return model
