"""Frame layouts: which frames of a clip attend to which.

A layout is a ``(T, T)`` ``torch.bool`` matrix over frames (row = query frame, column = key
frame). Token ``i`` (frame ``i // L``) may attend to token ``j`` iff ``layout[i // L, j // L]``
or ``i == j``: every token always sees itself, so no attention row is ever empty.

Presets (accepted wherever a layout is)::

    kmt   t != t'   Kronecker mask temporal attention     T=4:  . # # #
                                                                # . # #
                                                                # # . #
                                                                # # # .
    kmct  t' < t    Kronecker mask causal temporal            . . . .
                                                                # . . .
                                                                # # . .
                                                                # # # .
    joint always    full space-time attention
    frame t == t'   attention inside each frame only

(``#`` = the frame pair attends, ``.`` = blocked except for each token's self term.)
"""

from __future__ import annotations

import torch

PRESETS = ("kmt", "kmct", "joint", "frame")

LayoutLike = str | torch.Tensor


def preset(name: str, frames: int) -> torch.Tensor:
    """The ``(frames, frames)`` bool layout of a preset (see the module docstring)."""
    _check_frames(frames)
    t = torch.arange(frames)
    if name == "kmt":
        return t[:, None] != t[None, :]
    if name == "kmct":
        return t[None, :] < t[:, None]
    if name == "joint":
        return torch.ones(frames, frames, dtype=torch.bool)
    if name == "frame":
        return torch.eye(frames, dtype=torch.bool)
    raise ValueError(f"unknown layout preset {name!r}; expected one of {', '.join(PRESETS)}")


def window(frames: int, w: int, causal: bool = False) -> torch.Tensor:
    """Windowed Kronecker layout for long clips: ``t != t'`` and ``|t - t'| <= w``.

    With ``causal=True`` only earlier frames: ``0 < t - t' <= w``. Returns ``(frames, frames)`` bool.
    """
    _check_frames(frames)
    if not isinstance(w, int) or w < 0:
        raise ValueError(f"window size w must be a non-negative int, got {w!r}")
    t = torch.arange(frames)
    d = t[:, None] - t[None, :]
    return (d > 0) & (d <= w) if causal else (d != 0) & (d.abs() <= w)


def resolve(layout: LayoutLike, frames: int) -> torch.Tensor:
    """Validate ``layout`` (a preset name or a ``(frames, frames)`` bool tensor) and return it as a
    contiguous CPU bool tensor."""
    if isinstance(layout, str):
        return preset(layout, frames)
    if not isinstance(layout, torch.Tensor):
        raise TypeError(f"layout must be a preset name or a torch.bool tensor, got {type(layout).__name__}")
    if layout.dtype != torch.bool:
        raise TypeError(f"layout must have dtype torch.bool, got {layout.dtype}")
    if layout.shape != (frames, frames):
        raise ValueError(f"layout must have shape (frames, frames) = ({frames}, {frames}), got {tuple(layout.shape)}")
    return layout.detach().to("cpu").contiguous()


def sparsity(layout: LayoutLike, frames: int, tokens: int) -> float:
    """Fraction of the ``N x N`` (query, key) pairs that are *not* computed, ``N = frames * tokens``."""
    lay = resolve(layout, frames)
    allowed = int(lay.sum()) * tokens * tokens + int((~lay.diagonal()).sum()) * tokens
    return 1.0 - allowed / float(frames * tokens) ** 2


def render(layout: LayoutLike, frames: int) -> str:
    """ASCII drawing of a layout: ``#`` attends, ``.`` blocked (self term only)."""
    lay = resolve(layout, frames)
    return "\n".join(" ".join("#" if a else "." for a in row) for row in lay.tolist())


def _check_frames(frames: int) -> None:
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
