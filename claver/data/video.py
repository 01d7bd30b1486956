"""Video files: probing, decoding only the sampled frames, frame sampling, writing mp4.

    info = probe(path)                                  # frames, fps, size, duration: no full decode
    frames = read_frames(path, [0, 8, 16], size=256)   # (3, H, W, 3) uint8, only those decoded

Backends: PyAV (threaded FFmpeg decoding, always installed), torchcodec (PyTorch's decoder, when it
and FFmpeg's shared libraries are installed) and decord (unmaintained). ``backend=`` chooses, else
the ``CLAVER_VIDEO_BACKEND`` environment variable, else ``"auto"``: torchcodec for MP4/MOV and
Matroska/WebM files when it loads, PyAV otherwise (training configs: ``data.decoder``). Frame i is
the i-th frame of a full decode on every backend; frames are shown as the stream's display matrix
asks (a phone's portrait video comes out portrait).

Sampling: training takes one random frame from each of T equal segments of the video;
evaluation takes ``num_clips`` evenly spaced clips of T frames, each frame in the middle of its
segment.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np

from .video_info import DecodeError, VideoInfo, VideoReader, one_line, scaled_size
from .video_pyav import Mp4Writer, PyAVReader

__all__ = [
    "BACKENDS",
    "DecodeError",
    "Mp4Writer",
    "VideoInfo",
    "VideoReader",
    "backend_for",
    "eval_indices",
    "open_video",
    "probe",
    "read_frames",
    "scaled_size",
    "train_indices",
    "write_mp4",
]

BACKENDS = ("pyav", "torchcodec", "decord")
BACKEND_VARIABLE = "CLAVER_VIDEO_BACKEND"
_MODULES = {"pyav": "av", "torchcodec": "torchcodec", "decord": "decord"}


@functools.cache  # asked for every video opened; what is installed does not change in a process
def unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot decode here, as the end of a sentence; None when it can."""
    if backend == "torchcodec":
        from .video_backends import torchcodec_problem

        return torchcodec_problem()
    if importlib.util.find_spec(_MODULES[backend]) is None:
        return f"is not installed (pip install {_MODULES[backend]})"
    return None


def choose_backend(backend: str | None = None) -> str:
    """The backend setting: ``backend``; where that is None or ``"auto"``,
    ``$CLAVER_VIDEO_BACKEND`` when set, else ``"auto"``. An error says why a named one cannot
    decode here."""
    name = backend if backend not in (None, "auto") else os.environ.get(BACKEND_VARIABLE) or "auto"
    if name not in ("auto", *BACKENDS):
        raise ValueError(f"unknown video backend {name!r}; expected auto or one of {', '.join(BACKENDS)}")
    problem = None if name == "auto" else unavailable(name)
    if problem:
        raise ValueError(f"video backend {name!r} {problem}")
    return name


def backend_for(path: Path, setting: str) -> str:
    """The backend that reads ``path`` under ``setting`` (from :func:`choose_backend`): torchcodec
    and decord only where they return the frames of a full decode (MP4/MOV, Matroska/WebM; see
    :mod:`claver.data.video_backends`), PyAV in their place elsewhere; ``auto`` is torchcodec
    where it can decode, else PyAV."""
    if setting == "pyav":
        return setting
    from .video_backends import seeks_exactly

    if setting == "auto" and unavailable("torchcodec") is not None:
        return "pyav"
    name = "torchcodec" if setting == "auto" else setting
    if seeks_exactly(path):
        return name
    if setting != "auto":
        warnings.warn(  # once per process (the same text each time), not once per file of a dataset
            f"{name} returns other frames than a full decode outside MP4/MOV and Matroska/WebM files "
            "(AVI, MPEG...); PyAV reads those",
            stacklevel=3,
        )
    return "pyav"


def open_video(path: str | Path, backend: str | None = None) -> VideoReader:
    """An open video (``.info``, ``.read(indices, size=None)``, ``.frames(size=None)``; a context
    manager) read by ``backend`` (see :func:`choose_backend`). Raises :class:`DecodeError` for a
    missing, empty, unreadable or picture-less file."""
    path = Path(path)
    setting = choose_backend(backend)
    if not path.is_file():
        raise DecodeError(f"missing video: {path}")
    if path.stat().st_size == 0:
        raise DecodeError(f"empty file: {path}")
    name = backend_for(path, setting)
    try:
        if name == "pyav":
            reader = PyAVReader(path)
        else:
            from .video_backends import DecordReader, TorchCodecReader

            reader = TorchCodecReader(path) if name == "torchcodec" else DecordReader(path)
    except DecodeError:
        raise
    except Exception as e:  # decoders raise many types for broken files; all mean "unreadable"
        raise DecodeError(f"cannot read {path}: {one_line(e)}") from e
    if reader.info.num_frames == 0:
        reader.close()
        raise DecodeError(f"no frames in {path}")
    return reader


def probe(path: str | Path, backend: str | None = None) -> VideoInfo:
    """Frame count, fps, displayed width and height, duration and rotation, read from the
    container: the packets are counted (no metadata frame count is trusted), no picture is
    converted, at most the first is decoded (PyAV shows the display rotation only on frames)."""
    with open_video(path, backend) as video:
        return video.info


def read_frames(path: str | Path, indices, size: int | None = None, backend: str | None = None) -> np.ndarray:
    """Frames ``indices`` (any order, repeats allowed) of a video as ``(len(indices), H, W, 3)``
    uint8 RGB, decoding only what they need; ``size`` resizes the short side to that many pixels
    in the decoder's scaler, before any array exists. Frames a truncated file still holds are
    returned; a :class:`DecodeError` says which wanted frames it does not."""
    with open_video(path, backend) as video:
        return video.read(indices, size)


def write_mp4(path: str | Path, frames, fps: float, codec: str = "libx264", **options) -> Path:
    """Writes an iterable of RGB frames ``(H, W, 3)`` uint8 (even sizes) to an mp4 file."""
    with Mp4Writer(path, fps, codec, **options) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


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
