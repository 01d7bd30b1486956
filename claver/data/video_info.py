"""What every video backend shares: the probe result, the error, the output size rule, the
reader protocol."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DecodeError(RuntimeError):
    """The video is missing, unreadable, corrupt, truncated before the wanted frames, or empty."""


def one_line(e: BaseException) -> str:
    """A decoder's exception as one line for a :class:`DecodeError`: its type and its text with the
    line breaks and runs of spaces (FFmpeg's, torchcodec's, decord's) folded."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


@dataclass(frozen=True)
class VideoInfo:
    """A video stream as displayed: ``num_frames`` frames at ``fps`` (average), ``width`` x
    ``height`` pixels after the display rotation (``rotation``: degrees counter-clockwise,
    0/90/180/270), ``duration`` seconds."""

    num_frames: int
    fps: float
    width: int
    height: int
    duration: float
    rotation: int = 0


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side set to ``short_side``, the aspect ratio kept."""
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


class VideoReader:
    """Base of the backends' readers: ``info`` (:class:`VideoInfo`), ``read(indices, size)``,
    ``frames(size)`` and ``close()``; a context manager that closes on exit."""

    info: VideoInfo
    path: Path

    def read(self, indices, size: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def frames(self, size: int | None = None):
        """Every frame in order, ``(H, W, 3)`` uint8 each (read 32 at a time: a stream, not an
        array)."""
        n = self.info.num_frames
        for start in range(0, n, 32):
            yield from self.read(range(start, min(start + 32, n)), size)

    def checked(self, indices) -> np.ndarray:
        """``indices`` as a flat int64 array; IndexError naming the file for one out of range."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = self.info.num_frames
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"frame indices must be in [0, {n}) for {self.path}, got {idx.tolist()}")
        return idx

    def empty(self, size: int | None) -> np.ndarray:
        """What reading no frame gives: ``(0, H, W, 3)`` uint8 at the size ``size`` asks."""
        w, h = self.info.width, self.info.height
        w, h = (w, h) if size is None else scaled_size(w, h, size)
        return np.zeros((0, h, w, 3), np.uint8)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
