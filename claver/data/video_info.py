"""What every video backend shares: the probe result, the error, the output size rule, the
reader protocol."""

from __future__ import annotations

from dataclasses import dataclass


class DecodeError(RuntimeError):
    """The video is missing, unreadable, corrupt, truncated before the wanted frames, or empty."""


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
    """Base of the backends' readers: ``info`` (:class:`VideoInfo`), ``read(indices, size)`` and
    ``close()``; a context manager that closes on exit."""

    info: VideoInfo

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
