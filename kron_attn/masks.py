"""Token-level masks built from a frame layout: for tests, peers and FlexAttention users.

Kernels never build these ``N x N`` matrices; only tests and baselines do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .layouts import LayoutLike, resolve


def dense_mask(frames: int, tokens: int, layout: LayoutLike, device: torch.device | str | None = None) -> torch.Tensor:
    """``(N, N)`` bool, True where query ``i`` may attend key ``j``: ``layout[i//L, j//L] or i == j``."""
    lay = resolve(layout, frames).to(device)
    _check_tokens(tokens)
    n = frames * tokens
    eye = torch.eye(n, dtype=torch.bool, device=device)
    return torch.kron(lay.to(torch.uint8), torch.ones(tokens, tokens, dtype=torch.uint8, device=device)).bool() | eye


def additive_mask(
    frames: int,
    tokens: int,
    layout: LayoutLike,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(N, N)`` float mask, 0 where attention is allowed and ``-inf`` where blocked.

    Built as the paper builds it, with Kronecker products: the blocked positions are
    ``kron(1 - layout, J_L) - I_N``, which for ``"kmt"`` is ``kron(I_T, J_L - I_L)`` and for
    ``"kmct"`` is ``kron(I_T, J_L - I_L) + kron(U_T, J_L)`` (``U_T = triu(J_T, 1)``).
    """
    lay = resolve(layout, frames).to(device)
    _check_tokens(tokens)
    ones = torch.ones(tokens, tokens, dtype=dtype, device=device)
    blocked = torch.kron((~lay).to(dtype), ones) - torch.eye(frames * tokens, dtype=dtype, device=device)
    return torch.zeros_like(blocked).masked_fill(blocked > 0, float("-inf"))


def flex_mask_mod(tokens: int, layout: LayoutLike, device: torch.device | str | None = None) -> Callable:
    """A FlexAttention ``mask_mod(b, h, q_idx, kv_idx) -> bool`` for the same rule.

    Presets are pure frame arithmetic (no frame count needed). A custom ``(T, T)`` layout tensor
    is captured and indexed; pass ``device`` to place it where the attention runs.
    """
    _check_tokens(tokens)
    if isinstance(layout, str):
        rules = {
            "kmt": lambda qf, kf: qf != kf,
            "kmct": lambda qf, kf: kf < qf,
            "joint": lambda qf, kf: qf == qf,
            "frame": lambda qf, kf: qf == kf,
        }
        if layout not in rules:
            resolve(layout, 1)  # raises the standard unknown-preset error
        rule = rules[layout]

        def mask_mod(b, h, q_idx, kv_idx):
            return rule(q_idx // tokens, kv_idx // tokens) | (q_idx == kv_idx)

        return mask_mod
    frames = layout.shape[0] if isinstance(layout, torch.Tensor) and layout.dim() > 0 else 0
    lay = resolve(layout, frames).to(device)

    def mask_mod(b, h, q_idx, kv_idx):
        return lay[q_idx // tokens, kv_idx // tokens] | (q_idx == kv_idx)

    return mask_mod


def _check_tokens(tokens: int) -> None:
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        raise ValueError(f"tokens per frame must be an int >= 1, got {tokens!r}")
