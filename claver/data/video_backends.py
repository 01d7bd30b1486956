"""The other video backends, with the interface of :class:`claver.data.video_pyav.PyAVReader`:
torchcodec (PyTorch's decoder, over FFmpeg's shared libraries, on the CPU; its NVDEC path is not
wired in) and decord (unmaintained: no AV1 decoder, truncated files not opened, some rotated
streams fail). Each is used only when installed and chosen (:func:`claver.data.video.open_video`).

Both return frame i of a full decode in MP4/MOV and Matroska/WebM files only: in AVI and MPEG-PS
(.mpg) files their frames differ from a full decode (tests/test_video.py: H.264 and MPEG-4 with
B-frames in AVI, MPEG-2 in .mpg; torchcodec also MPEG-TS), so those go to PyAV
(:func:`seeks_exactly`). torchcodec's approximate seek mode trusts the header's frame rate and
returns other frames of a variable-frame-rate MP4, so the reader scans (exact mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .video_info import DecodeError, VideoInfo, VideoReader, one_line, scaled_size

# The first bytes of the containers torchcodec and decord seek exactly in: an ISO BMFF box type at
# offset 4 (MP4, MOV, M4V, 3GP) or the EBML magic number (Matroska, WebM).
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")
_EBML = b"\x1a\x45\xdf\xa3"


def seeks_exactly(path: str | Path) -> bool:
    """Whether torchcodec and decord return the frames of a full decode from this file: its
    container (read from the file's first bytes, not its name) is MP4/MOV or Matroska/WebM."""
    with open(path, "rb") as f:
        head = f.read(8)
    return head[4:8] in _ISO_BOXES or head[:4] == _EBML


def torchcodec_problem() -> str | None:
    """Why torchcodec cannot decode here (not installed, or FFmpeg's shared libraries, which it
    loads at import, missing); None when it can."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except ImportError as e:
        if e.name == "torchcodec":
            return "is not installed (pip install torchcodec)"
        return f"cannot be imported: {e}"
    except (RuntimeError, OSError) as e:  # torchcodec raises RuntimeError when no FFmpeg loads
        return (
            "cannot load FFmpeg's shared libraries (FFmpeg 4 to 8, e.g. apt-get install ffmpeg): "
            + str(e).strip().splitlines()[0]
        )
    return None


def _resize(frames: np.ndarray, size: int | None) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 with the short side resized to ``size``: bilinear, antialiased when
    shrinking (close to FFmpeg's area scaler, which the PyAV reader uses), computed on uint8."""
    if size is None or not len(frames):
        return frames
    w, h = scaled_size(frames.shape[2], frames.shape[1], size)
    if (w, h) == (frames.shape[2], frames.shape[1]):
        return frames
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=h < frames.shape[1], align_corners=False)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


class TorchCodecReader(VideoReader):
    """torchcodec's VideoDecoder on the CPU in exact seek mode (frame i is the i-th frame of a full
    decode, shown as the display matrix asks), reading the wanted frames in one batched call."""

    def __init__(self, path: str | Path):
        from torchcodec.decoders import VideoDecoder

        self.path = Path(path)
        try:  # one thread: FFmpeg's frame threads refill their pipeline after every seek (measured)
            self._decoder = VideoDecoder(str(path), seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=1)
        except ValueError as e:
            if "video stream" in str(e):  # torchcodec's words for a file without one
                raise DecodeError(f"no video stream in {self.path}") from e
            raise
        m = self._decoder.metadata
        rotation = int(round(m.rotation or 0)) % 360
        self.info = VideoInfo(
            m.num_frames, float(m.average_fps or 0.0), m.width, m.height, float(m.duration_seconds or 0.0), rotation
        )

    def read(self, indices, size: int | None = None) -> np.ndarray:
        """``(len(indices), H, W, 3)`` uint8 RGB (any order, repeats allowed); ``size`` resizes the
        short side."""
        idx = self.checked(indices)
        if not idx.size:
            return self.empty(size)
        try:
            frames = self._decoder.get_frames_at(indices=idx.tolist()).data.numpy()
        except RuntimeError as e:  # a damaged stream: torchcodec names no frame, so all are lost
            problem = f"frames of {self.path} cannot be decoded (truncated or corrupt file)"
            raise DecodeError(f"{problem}: {one_line(e)}") from e
        return _resize(frames, size)

    def close(self) -> None:
        self._decoder = None


class DecordReader(VideoReader):
    """decord's VideoReader (batch reads; it shows rotated streams as displayed but does not report
    the rotation)."""

    def __init__(self, path: str | Path):
        import decord

        self.path = Path(path)
        self._reader = decord.VideoReader(str(path))
        h, w = self._reader[0].shape[:2] if len(self._reader) else (0, 0)
        fps = float(self._reader.get_avg_fps() or 0.0)
        n = len(self._reader)
        self.info = VideoInfo(n, fps, w, h, n / fps if fps else 0.0, 0)

    def read(self, indices, size: int | None = None) -> np.ndarray:
        idx = self.checked(indices)
        if not idx.size:
            return self.empty(size)
        try:
            frames = self._reader.get_batch(idx.tolist()).asnumpy()
        except Exception as e:  # decord raises its own DECORDError (a RuntimeError) for damage
            raise DecodeError(f"frames of {self.path} cannot be decoded: {one_line(e)}") from e
        return _resize(frames, size)

    def close(self) -> None:
        self._reader = None
