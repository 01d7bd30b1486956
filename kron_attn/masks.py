"""Token-level masks built from a frame layout: for tests, peers and FlexAttention users.

Kernels never build these ``N x N`` matrices; only tests and baselines do. ``prefix`` tokens (a
class token...) come first and attend, and are attended by, every token.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .layouts import Layout, LayoutLike, preset_rule


def dense_mask(
    frames: int, tokens: int, layout: LayoutLike, device: torch.device | str | None = None, prefix: int = 0
) -> torch.Tensor:
    """``(N, N)`` bool, ``N = prefix + frames * tokens``, True where query ``i`` may attend key ``j``:
    either is a prefix token, or ``layout[frame(i), frame(j)]``, or ``i == j``."""
    _check_tokens(tokens, prefix)
    return Layout.of(layout, frames).token_mask(tokens, prefix, device)


def additive_mask(
    frames: int,
    tokens: int,
    layout: LayoutLike,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    prefix: int = 0,
) -> torch.Tensor:
    """``(N, N)`` float mask, 0 where attention is allowed and ``-inf`` where blocked.

    Built as the paper builds it, with Kronecker products: the blocked positions are
    ``kron(1 - layout, J_L) - I_N``, which for ``"kmt"`` is ``kron(I_T, J_L - I_L)`` and for
    ``"kmct"`` is ``kron(I_T, J_L - I_L) + kron(U_T, J_L)`` (``U_T = triu(J_T, 1)``); prefix
    rows and columns are all 0.
    """
    _check_tokens(tokens, prefix)
    lay = Layout.of(layout, frames).matrix.to(device)
    ones = torch.ones(tokens, tokens, dtype=dtype, device=device)
    blocked = torch.kron((~lay).to(dtype), ones) - torch.eye(frames * tokens, dtype=dtype, device=device)
    mask = torch.zeros(prefix + frames * tokens, prefix + frames * tokens, dtype=dtype, device=device)
    mask[prefix:, prefix:] = torch.zeros_like(blocked).masked_fill(blocked > 0, float("-inf"))
    return mask


def flex_mask_mod(
    tokens: int, layout: LayoutLike, device: torch.device | str | None = None, prefix: int = 0
) -> Callable:
    """A FlexAttention ``mask_mod(b, h, q_idx, kv_idx) -> bool`` for the same rule.

    Presets are pure frame arithmetic (no frame count needed). A custom ``(T, T)`` layout tensor
    (or Layout) is captured and indexed; pass ``device`` to place it where the attention runs.
    """
    _check_tokens(tokens, prefix)
    if isinstance(layout, str):
        rule = preset_rule(layout)
    else:
        lay = Layout.of(layout, layout.frames if isinstance(layout, Layout) else layout.shape[0]).matrix.to(device)

        def rule(qf, kf):
            return lay[qf.clamp(min=0), kf.clamp(min=0)]

    def mask_mod(b, h, q_idx, kv_idx):
        qf, kf = (q_idx - prefix) // tokens, (kv_idx - prefix) // tokens
        return rule(qf, kf) | (q_idx == kv_idx) | (q_idx < prefix) | (kv_idx < prefix)

    return mask_mod


def _check_tokens(tokens: int, prefix: int = 0) -> None:
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        raise ValueError(f"tokens per frame must be an int >= 1, got {tokens!r}")
    if not isinstance(prefix, int) or isinstance(prefix, bool) or prefix < 0:
        raise ValueError(f"prefix tokens must be an int >= 0, got {prefix!r}")
