"""Decoding and frame sampling.

Training takes one random frame from each of T equal segments of the video; evaluation takes
``num_clips`` evenly spaced clips of T frames, each frame in the middle of its segment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class DecodeError(RuntimeError):
    """The video is missing, unreadable, corrupt or empty."""


def decode(path: str | Path) -> np.ndarray:
    """All frames of a video as ``(F, H, W, 3)`` uint8 RGB (decord when installed, else PyAV)."""
    path = Path(path)
    if not path.is_file():
        raise DecodeError(f"missing video: {path}")
    try:
        frames = _decode_decord(path) if _has_decord() else _decode_av(path)
    except DecodeError:
        raise
    except Exception as e:  # decoders raise many types for broken files; all mean "unreadable"
        raise DecodeError(f"cannot decode {path}: {type(e).__name__}: {e}") from e
    if frames.shape[0] == 0:
        raise DecodeError(f"no frames in {path}")
    return frames


def _has_decord() -> bool:
    import importlib.util

    return importlib.util.find_spec("decord") is not None


def _decode_decord(path: Path) -> np.ndarray:
    import decord

    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def _decode_av(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise DecodeError(f"no video stream in {path}")
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)


def train_indices(num_frames: int, t: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame from each of ``t`` equal segments (repeats frames of short videos)."""
    edges = np.linspace(0, num_frames, t + 1)
    lo, hi = np.floor(edges[:-1]).astype(int), np.maximum(np.floor(edges[1:]).astype(int), np.floor(edges[:-1]) + 1)
    return np.minimum(rng.integers(lo, hi.astype(int)), num_frames - 1)


def eval_indices(num_frames: int, t: int, num_clips: int = 1) -> np.ndarray:
    """``(num_clips, t)`` frame indices: clips evenly offset within the segments."""
    seg = num_frames / t
    offsets = (np.arange(num_clips) + 0.5) / num_clips * seg
    idx = np.floor(np.arange(t)[None, :] * seg + offsets[:, None]).astype(int)
    return np.minimum(idx, num_frames - 1)
