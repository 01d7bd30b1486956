"""PyAV (FFmpeg) video I/O: the reader that decodes only what the wanted frames need, and the mp4
writer.

Reading: the packets of the video stream are indexed first, without decoding (their presentation
timestamps, in order, are the frames; keyframe packets mark where decoding can start). For each
wanted frame, in order, the reader decodes forward from where it is when no keyframe lies between
(near), and seeks to the keyframe at or before the frame otherwise (far); frames that are not
wanted and that no frame refers to are skipped by the decoder, and only the wanted frames are
converted to RGB, resized by FFmpeg's scaler when asked, before any array exists. Frame i is the
i-th frame of a full decode; streams whose packets carry no usable timestamps, and frames no seek
reaches, are decoded in order from the start instead.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .video_info import DecodeError, VideoInfo, VideoReader, scaled_size


def _rotation_turns(degrees: float) -> int:
    """np.rot90 turns (counter-clockwise) that show a frame as its display matrix asks."""
    return int(round(degrees / 90.0)) % 4


class PyAVReader(VideoReader):
    """An open video: ``info`` (:class:`VideoInfo`) and ``read(indices, size)``. Close it (or use
    it as a context manager)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._scaler = VideoReformatter()
        self._open()
        try:
            self._index()
            self.info = self._info()
        except BaseException:
            self._container.close()
            raise

    def _open(self) -> None:
        """Opens the file: a fresh demuxer and decoder."""
        self._container = av.open(str(self.path))
        if not self._container.streams.video:
            self._container.close()
            raise DecodeError(f"no video stream in {self.path}")
        self._stream = self._container.streams.video[0]
        # Slice threads: frame threads refill their pipeline after every seek and cost more than
        # they give on the short hops between sampled frames (measured: 340x256 and 720p H.264).
        self._stream.thread_type = "SLICE"

    def close(self) -> None:
        self._container.close()

    # ---- the packet index ----------------------------------------------------------------

    def _index(self) -> None:
        """Timestamps of the frames in presentation order, and for each frame the position of the
        keyframe at or before it; ``_pts`` is None when timestamps cannot identify frames. The
        first picture is decoded on the way: PyAV shows the display matrix on frames only."""
        pts, keys = [], []
        self._key_dts = {}  # keyframe presentation time -> its decode time
        first = None
        for packet in self._container.demux(self._stream):
            if first is None:
                try:
                    first = next(iter(self._stream.codec_context.decode(packet)), None)
                except av.FFmpegError:
                    first = False  # the rotation stays unknown (0); reading reports the damage
            if packet.size == 0 or packet.is_discard:
                continue
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
                self._key_dts[packet.pts] = packet.dts
        self._count = len(pts)
        self._turns = _rotation_turns(first.rotation) if isinstance(first, av.VideoFrame) else 0
        usable = None not in pts and len(set(pts)) == len(pts) and None not in keys and bool(keys)
        if usable:
            self._pts = sorted(pts)
            self._position = {p: i for i, p in enumerate(self._pts)}
            starts = sorted(self._position[k] for k in keys)
            self._keyframe = [starts[max(bisect.bisect_right(starts, i) - 1, 0)] for i in range(len(self._pts))]
        else:
            self._pts = None
        self._decoder = None  # a frame iterator, positioned after frame self._at
        self._at = -1

    def _info(self) -> VideoInfo:
        s = self._stream
        rate = s.average_rate or s.guessed_rate
        fps = float(rate) if rate else 0.0
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / 1e6
        else:
            duration = self._count / fps if fps else 0.0
        width, height = s.codec_context.width, s.codec_context.height
        if self._turns % 2:
            width, height = height, width
        return VideoInfo(self._count, fps, width, height, duration, 90 * self._turns)

    # ---- decoding ------------------------------------------------------------------------

    def _rewind(self):
        """Every frame from the first, by a fresh demuxer and decoder that skip nothing. Reopening
        is the rewind every format gets right: a seek to 0 means a decode time in some (AVI) and a
        presentation time in others."""
        self._container.close()
        self._open()
        return self._container.decode(self._stream)

    def _decode_from(self, frame: int, wanted: frozenset):
        """Seeks to the keyframe at or before ``frame`` and returns a frame iterator from there:
        the ``wanted`` timestamps and the frames others refer to; the packets of the rest are
        skipped by the decoder (FFmpeg's skip_frame "NONREF"), which leaves the frames it gives
        unchanged. The seek goes by the keyframe's presentation time, or, where that lands on a
        later keyframe (AVI seeks by decode time, and B-frames make the two differ), by its decode
        time; should that land late too, the iterator is empty and the frames are read in order
        (frames decoded after a late landing may refer to pictures never decoded)."""
        key = self._keyframe[frame]
        pts = self._pts[key]
        for ts in dict.fromkeys(t for t in (pts, self._key_dts.get(pts)) if t is not None):
            self._container.seek(ts, stream=self._stream, backward=True, any_frame=False)
            packets = self._container.demux(self._stream)
            head = []
            for packet in packets:
                head.append(packet)
                if packet.pts is not None:
                    break
            if not head or head[-1].pts is None or self._position.get(head[-1].pts, key) <= key:
                return self._decode_packets(itertools.chain(head, packets), wanted)
        return iter(())

    def _decode_packets(self, packets, wanted: frozenset):
        codec = self._stream.codec_context
        for packet in packets:
            codec.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in wanted else "NONREF"
            yield from codec.decode(packet)

    def _convert(self, frame: av.VideoFrame, size: int | None) -> np.ndarray:
        w, h = (frame.width, frame.height) if size is None else scaled_size(frame.width, frame.height, size)
        if (w, h) == (frame.width, frame.height):
            rgb = frame.to_ndarray(format="rgb24")
        else:  # one scaler for the whole video: FFmpeg sets up a scaling context once, not per frame
            rgb = self._scaler.reformat(frame, width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        return np.rot90(rgb, self._turns).copy() if self._turns else rgb

    def read(self, indices, size: int | None = None) -> np.ndarray:
        """``(len(indices), H, W, 3)`` uint8 RGB, frame ``indices[k]`` at position k (repeats and any
        order allowed), shown as the display matrix asks; ``size`` resizes the short side."""
        idx = self.checked(indices)
        if not idx.size:
            return self.empty(size)
        wanted = sorted(set(idx.tolist()))
        got: dict[int, np.ndarray] = {}
        self._read(wanted, size, got, seeking=self._pts is not None)
        if self._pts is not None and len(got) < len(wanted):  # e.g. no seek reached them (_decode_from)
            self._read([i for i in wanted if i not in got], size, got, seeking=False)
        missing = sorted(set(idx.tolist()) - set(got))
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise DecodeError(f"frames {shown} of {self.path} cannot be decoded (truncated or corrupt file)")
        return np.stack([got[i] for i in idx.tolist()])

    def _read(self, wanted: list[int], size: int | None, got: dict, seeking: bool) -> None:
        self._decoder, self._at = None, -1  # every read starts afresh (indices may go backwards)
        # A truncated or corrupt stream raises: what was decoded before the damage stays usable.
        with contextlib.suppress(av.FFmpegError):
            (self._read_seeking if seeking else self._read_in_order)(wanted, size, got)

    def frames(self, size: int | None = None):
        """Every frame in order, converted (and resized) one at a time: a stream, not an array."""
        self._decoder, self._at = None, -1
        for frame in self._rewind():
            yield self._convert(frame, size)

    def _read_seeking(self, wanted: list[int], size: int | None, got: dict) -> None:
        pts = frozenset(self._pts[i] for i in wanted)
        for target in wanted:
            if self._decoder is None or self._keyframe[target] > self._at:
                self._decoder, self._at = self._decode_from(target, pts), -1  # far: a keyframe lies between
            for frame in self._decoder:
                i = self._position.get(frame.pts)
                if i is None:
                    continue
                self._at = i
                if i == target:
                    got[i] = self._convert(frame, size)
                    break
                if i > target:  # passed over: the decoder never gave it
                    break
            else:
                self._decoder = None  # end of the stream

    def _read_in_order(self, wanted: list[int], size: int | None, got: dict) -> None:
        want = set(wanted)
        for i, frame in enumerate(self._rewind()):
            if i in want:
                got[i] = self._convert(frame, size)
                want.discard(i)
                if not want:
                    break
        self._decoder, self._at = None, -1


class Mp4Writer:
    """Writes RGB frames ``(H, W, 3)`` uint8 to an mp4 file, one at a time (H.264 by default;
    ``codec="mpeg4"`` needs no x264). Even sizes for yuv420p; use as a context manager."""

    def __init__(self, path: str | Path, fps: float, codec: str = "libx264", bit_rate: int | None = None, **options):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w")
        rate = Fraction(fps).limit_denominator(1001)  # 29.97 -> 30000/1001
        self._stream = self._container.add_stream(codec, rate=rate, options={k: str(v) for k, v in options.items()})
        self._stream.pix_fmt = "yuv420p"
        if bit_rate is not None:
            self._stream.bit_rate = bit_rate
        self._sized = False

    def write(self, frame: np.ndarray) -> None:
        if not self._sized:
            self._stream.height, self._stream.width = frame.shape[:2]
            self._sized = True
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
