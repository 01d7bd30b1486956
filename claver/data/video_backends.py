"""Optional video backends with the interface of :class:`claver.data.video_pyav.PyAVReader`:
torchcodec (FFmpeg through PyTorch, on the CPU; its NVDEC path is not wired in) and decord. Each
is used only when installed and chosen (:func:`claver.data.video.open_video`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .video_info import VideoInfo, VideoReader, scaled_size


def _resize(frames: np.ndarray, size: int | None) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 with the short side resized to ``size`` (area averaging)."""
    if size is None or not len(frames):
        return frames
    w, h = scaled_size(frames.shape[2], frames.shape[1], size)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(h, w), mode="area" if h <= frames.shape[1] else "bilinear")
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


class TorchCodecReader(VideoReader):
    """torchcodec's VideoDecoder on the CPU in exact seek mode (frame i is the i-th frame, as a
    full decode)."""

    def __init__(self, path: str | Path):
        from torchcodec.decoders import VideoDecoder

        self.path = Path(path)
        self._decoder = VideoDecoder(str(path), seek_mode="exact", dimension_order="NHWC")
        m = self._decoder.metadata
        rotation = int(getattr(m, "rotation", 0) or 0) % 360
        self.info = VideoInfo(
            m.num_frames, float(m.average_fps or 0.0), m.width, m.height, float(m.duration_seconds or 0.0), rotation
        )

    def read(self, indices, size: int | None = None) -> np.ndarray:
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        frames = self._decoder.get_frames_at(indices=idx).data.cpu().numpy()
        return _resize(frames, size)

    def close(self) -> None:
        self._decoder = None


class DecordReader(VideoReader):
    """decord's VideoReader (frame-accurate batch reads)."""

    def __init__(self, path: str | Path):
        import decord

        self.path = Path(path)
        self._reader = decord.VideoReader(str(path))
        h, w = self._reader[0].shape[:2] if len(self._reader) else (0, 0)
        fps = float(self._reader.get_avg_fps() or 0.0)
        n = len(self._reader)
        self.info = VideoInfo(n, fps, w, h, n / fps if fps else 0.0, 0)

    def read(self, indices, size: int | None = None) -> np.ndarray:
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        return _resize(self._reader.get_batch(idx).asnumpy(), size)

    def close(self) -> None:
        self._reader = None
