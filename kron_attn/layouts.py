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

# Each preset's rule on query and key frame indices (ints or broadcasting tensors): the one
# statement of the presets, which layout matrices and FlexAttention mask_mods both evaluate.
PRESET_RULES = {
    "kmt": lambda q, k: q != k,
    "kmct": lambda q, k: k < q,
    "joint": lambda q, k: (q - k) == (q - k),  # every pair, in the pairs' broadcast shape
    "frame": lambda q, k: q == k,
}
PRESETS = tuple(PRESET_RULES)


class Layout:
    """A frame layout: a ``(T, T)`` bool matrix (row = query frame, column = key frame) and a name.

    The owner of the frame arithmetic: token ``i`` of a clip of ``T`` frames of ``L`` tokens,
    after ``P`` prefix tokens (a class token...), belongs to frame ``(i - P) // L``; prefix tokens
    attend to every token and every token to them; frame tokens attend by ``matrix`` or to
    themselves. Accepted wherever a layout is (``kron_attn.attention``, ``KroneckerAttention``,
    ``masks``); ``Layout.of`` turns a preset name or a matrix into one.
    """

    def __init__(self, matrix: torch.Tensor, name: str = "custom"):
        if not isinstance(matrix, torch.Tensor):
            raise TypeError(
                f"layout must be a preset name, a Layout or a torch.bool tensor, got {type(matrix).__name__}"
            )
        if matrix.dtype != torch.bool:
            raise TypeError(f"layout must have dtype torch.bool, got {matrix.dtype}")
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
            raise ValueError(f"layout must be a square (T, T) matrix with T >= 1, got shape {tuple(matrix.shape)}")
        self.matrix = matrix.detach().to("cpu").contiguous()
        self.name = name

    @classmethod
    def of(cls, layout: LayoutLike, frames: int) -> Layout:
        """``layout`` (a preset name, a ``(frames, frames)`` bool tensor, or a Layout) for ``frames``."""
        check_frames(frames)
        if isinstance(layout, Layout):
            result = layout
        elif isinstance(layout, str):
            return cls(preset(layout, frames), layout)
        else:
            result = cls(layout)
        if result.frames != frames:
            raise ValueError(
                f"layout must have shape (frames, frames) = ({frames}, {frames}), got {tuple(result.matrix.shape)}"
            )
        return result

    @property
    def frames(self) -> int:
        return self.matrix.shape[0]

    def allowed_pairs(self, tokens: int, prefix: int = 0) -> int:
        """(query, key) pairs that attend among ``prefix + frames * tokens`` tokens: allowed frame
        blocks x L², the self terms of blocked diagonal blocks, and every pair with a prefix token.
        The useful work of attention is 4·D times this (forward)."""
        n = self.frames * tokens
        frame_pairs = int(self.matrix.sum()) * tokens * tokens + int((~self.matrix.diagonal()).sum()) * tokens
        return frame_pairs + 2 * prefix * n + prefix * prefix

    def sparsity(self, tokens: int | None = None, prefix: int = 0) -> float:
        """Fraction of the (query, key) pairs not computed: of all ``N²`` with ``tokens`` per frame
        (and ``prefix`` tokens); without ``tokens``, of the frame pairs (the large-L limit)."""
        if tokens is None:
            return 1.0 - int(self.matrix.sum()) / self.frames**2
        n = prefix + self.frames * tokens
        return 1.0 - self.allowed_pairs(tokens, prefix) / float(n) ** 2

    def token_mask(self, tokens: int, prefix: int = 0, device: torch.device | str | None = None) -> torch.Tensor:
        """``(N, N)`` bool, ``N = prefix + frames * tokens``: True where query i may attend key j."""
        lay = self.matrix.to(device)
        n = self.frames * tokens
        frames = torch.kron(lay.to(torch.uint8), torch.ones(tokens, tokens, dtype=torch.uint8, device=device)).bool()
        mask = torch.ones(prefix + n, prefix + n, dtype=torch.bool, device=device)
        mask[prefix:, prefix:] = frames | torch.eye(n, dtype=torch.bool, device=device)
        return mask

    def __str__(self) -> str:
        return f"{self.name} layout, {self.frames} frames (# attends, . self term only):\n{render(self, self.frames)}"

    def __repr__(self) -> str:
        return f"Layout({self.name!r}, frames={self.frames})"


LayoutLike = str | torch.Tensor | Layout


def preset_rule(name: str):
    """The rule ``(query frame, key frame) -> attends`` of a preset (see :data:`PRESET_RULES`)."""
    if name not in PRESET_RULES:
        raise ValueError(f"unknown layout preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESET_RULES[name]


def preset(name: str, frames: int) -> torch.Tensor:
    """The ``(frames, frames)`` bool CPU layout of a preset (see the module docstring)."""
    check_frames(frames)
    t = torch.arange(frames, device="cpu")  # host data, also inside a `with torch.device(...)` block
    return preset_rule(name)(t[:, None], t[None, :])


def window(frames: int, w: int, causal: bool = False) -> torch.Tensor:
    """Windowed Kronecker layout for long clips: ``t != t'`` and ``|t - t'| <= w``.

    With ``causal=True`` only earlier frames: ``0 < t - t' <= w``. Returns ``(frames, frames)`` bool.
    """
    check_frames(frames)
    if not isinstance(w, int) or w < 0:
        raise ValueError(f"window size w must be a non-negative int, got {w!r}")
    t = torch.arange(frames, device="cpu")
    d = t[:, None] - t[None, :]
    return (d > 0) & (d <= w) if causal else (d != 0) & (d.abs() <= w)


def resolve(layout: LayoutLike, frames: int) -> torch.Tensor:
    """Validate ``layout`` and return its matrix as a contiguous ``(frames, frames)`` CPU bool tensor."""
    return Layout.of(layout, frames).matrix


def sparsity(layout: LayoutLike, frames: int, tokens: int) -> float:
    """Fraction of the ``N x N`` (query, key) pairs that are *not* computed, ``N = frames * tokens``."""
    return Layout.of(layout, frames).sparsity(tokens)


def render(layout: LayoutLike, frames: int, prefix: int = 0) -> str:
    """ASCII drawing of a layout: ``#`` attends, ``.`` blocked (self term only). With ``prefix``
    tokens, a labelled grid with their row and column (``P``): they attend every frame and every
    frame attends them.

    kmt, 3 frames, prefix:      P f0 f1 f2
                             P  #  #  #  #
                            f0  #  .  #  #
                            f1  #  #  .  #
                            f2  #  #  #  .
    """
    lay = resolve(layout, frames).tolist()
    if not prefix:
        return "\n".join(" ".join("#" if a else "." for a in row) for row in lay)
    labels = ["P"] + [f"f{t}" for t in range(frames)]
    width = max(len(x) for x in labels)
    cells = [[True] * (frames + 1)] + [[True] + row for row in lay]
    lines = [" " * width + " " + " ".join(x.rjust(width) for x in labels)]
    lines += [
        lab.rjust(width) + " " + " ".join(("#" if a else ".").rjust(width) for a in row)
        for lab, row in zip(labels, cells)
    ]
    return "\n".join(lines)


def check_frames(frames: int) -> None:
    """ValueError unless ``frames`` is an int >= 1."""
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise ValueError(f"frames must be an int >= 1, got {frames!r}")
