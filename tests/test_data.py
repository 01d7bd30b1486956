"""The video pipeline on generated mp4 files."""

import colorsys

import numpy as np
import pytest
import torch
from decoders import BACKENDS
from torchvision.transforms.v2 import functional as TF

from claver.data import synthetic, transforms
from claver.data.annotations import read_annotations
from claver.data.dataset import Skipped, VideoDataset, collate
from claver.data.transforms import (
    AugmentConfig,
    RawClips,
    draw_photometric,
    finish,
    mix_batch,
    photometric,
)
from claver.data.video import DecodeError, eval_indices, probe, read_frames, train_indices
from claver.labels import class_names


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("motion"), per_class=2, frames=12, size=48, seed=1)


def test_synthetic_dataset_layout(motion):
    names = class_names(motion / "labels.csv")
    assert names == synthetic.class_names() and len(names) == 12
    train = read_annotations(motion / "train.txt", motion, len(names))
    val = read_annotations(motion / "val.txt", motion, len(names))
    assert len(train) + len(val) == 24 and all(s.path.is_file() for s in train + val)


def test_reversal_pairs_are_exact_time_reversals(motion):
    fwd = read_frames(motion / "videos/growing/0000.mp4", range(12))
    bwd = read_frames(motion / "videos/shrinking/0000.mp4", range(12))
    assert fwd.shape == (12, 48, 48, 3)
    # Same frames in reverse order, up to the codec's loss.
    assert np.abs(fwd.astype(int) - bwd[::-1].astype(int)).mean() < 3
    assert np.abs(fwd.astype(int) - bwd.astype(int)).mean() > 3


def test_brightening_is_an_even_ramp_of_an_empty_field():
    clip = synthetic.render(5, 8, 16, np.random.default_rng(0)).astype(float)
    means = clip.mean(axis=(1, 2, 3))
    steps = np.diff(means)
    assert (steps > 0).all() and steps.max() < 1.5 * steps.min()  # no saturation at 255
    assert clip[-1].std(axis=(0, 1)).max() < 10  # one colour plus noise: no shape in it


def test_frame_sampling():
    rng = np.random.default_rng(0)
    idx = train_indices(100, 8, rng)
    assert len(idx) == 8 and all(12 * i <= j < 12.5 * (i + 1) + 1 for i, j in enumerate(idx))
    assert train_indices(3, 8, rng).max() <= 2
    ev = eval_indices(80, 8, num_clips=2)
    assert ev.shape == (2, 8) and (ev[0] < ev[1]).all()


def test_dataset_train_and_eval_views(motion):
    aug = AugmentConfig(input_size=32)
    train = VideoDataset(motion / "train.txt", motion, 12, frames=4, train=True, augment=aug)
    clip, label, _ = train[0]
    assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.float32 and 0 <= label < 12
    again, _, _ = train[0]
    assert torch.equal(clip, again), "an item must be reproducible within an epoch"
    val = VideoDataset(motion / "val.txt", motion, 12, frames=4, train=False, augment=aug, num_clips=2, num_crops=3)
    views, _, _ = val[0]
    assert views.shape == (6, 4, 3, 32, 32)
    # raw items (the engine's loaders: finished on the training device) are the same clips
    raw = VideoDataset(motion / "train.txt", motion, 12, frames=4, train=True, augment=aug, raw=True)[0][0]
    assert isinstance(raw, RawClips) and raw.pixels.dtype == torch.uint8 and raw.photometric.shape == (10,)
    assert torch.equal(finish(raw, aug.normalization, "cpu"), clip)
    raw_views = VideoDataset(motion / "val.txt", motion, 12, 4, False, aug, 2, 3, raw=True)[0][0]
    assert raw_views.photometric is None and torch.equal(finish(raw_views, aug.normalization, "cpu"), views)


def _torchvision_photometric(clip: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """draw_photometric's parameters applied by torchvision's float path (0-1), on 0-255."""
    steps = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    x = clip.double() / 255
    if p[0]:
        for step in p[5:9].long().tolist():
            x = steps[step](x, float(p[1 + step]))
    if p[9]:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    return x * 255


def test_photometric_is_torchvisions_on_float_images(motion):
    natural = torch.from_numpy(read_frames(motion / "videos/moving_left/0000.mp4", [0, 5, 11])).permute(0, 3, 1, 2)
    noise = torch.randint(0, 256, (3, 3, 24, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cfg = AugmentConfig(color_jitter=0.9, grayscale=0.3)
    for clip in (natural, noise):
        for seed in range(12):
            p = draw_photometric(cfg, np.random.default_rng(seed))
            ours = photometric(clip.float().contiguous(), p)
            torch.testing.assert_close(ours.double(), _torchvision_photometric(clip, p), rtol=0, atol=2e-3)
    # a batch, clips with different steps in different orders, equals the clips one by one
    batch = torch.stack([natural] * 6).float()
    params = torch.stack([draw_photometric(cfg, np.random.default_rng(s)) for s in range(6)])
    assert params[:, 0].sum() not in (0, 6), "the draws should mix jittered and plain clips"
    one_by_one = torch.stack([photometric(c.clone(), q) for c, q in zip(batch, params)])
    torch.testing.assert_close(photometric(batch, params), one_by_one, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="6 clips but 5 rows"):
        photometric(batch, params[:5])


@pytest.mark.parametrize("turn", [-0.1, -0.04, 0.0, 0.02, 0.1])
def test_hue_rotation_over_the_whole_colour_cube(turn):
    levels = torch.linspace(0, 1, 18, dtype=torch.float64)
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(1, 3, 18, 324)
    pixels = cube[0].flatten(1).T.tolist()  # float64 HSV round trips, Python's own (colorsys)
    turned = [colorsys.hsv_to_rgb((h + turn) % 1, s, v) for h, s, v in (colorsys.rgb_to_hsv(*p) for p in pixels)]
    expected = torch.tensor(turned, dtype=torch.float64).T.reshape(cube.shape)
    torch.testing.assert_close(transforms._rotate_hue(cube.clone(), turn), expected, rtol=0, atol=1e-12)
    grey = cube[:, :1].expand(1, 3, 18, 324).clone()
    assert torch.equal(transforms._rotate_hue(grey.clone(), turn), grey)


@pytest.mark.parametrize("decoder", BACKENDS[:2])  # pyav, torchcodec
def test_broken_videos_are_skipped_and_reported(motion, tmp_path, decoder):
    good = motion / "videos/moving_left/0000.mp4"
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x01 not a video")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:600])  # an MP4 start, no index: torchcodec's
    ann = tmp_path / "ann.txt"
    ann.write_text(f"{good} 0\ncorrupt.mp4 1\nempty.mp4 2\nmissing.mp4 3\ncut.mp4 4\n")
    ds = VideoDataset(ann, tmp_path, 12, frames=4, augment=AugmentConfig(input_size=32), decoder=decoder)
    with pytest.warns(UserWarning, match="skipping video"):
        items = [ds[i] for i in range(5)]
    clips, labels, skipped = collate(items)
    assert clips is not None and clips.shape[0] == 1 and labels.tolist() == [0], skipped
    assert len(skipped) == 4 and all(isinstance(s, Skipped) for s in skipped)
    with pytest.raises(DecodeError, match="missing video"):
        probe(tmp_path / "missing.mp4")


@pytest.mark.parametrize(
    "line, match",
    [("a.mp4 x", "label id 'x' is not an integer"), ("a.mp4 99", r"outside \[0, 12\)"), ("a.mp4", "expected")],
)
def test_bad_annotation_lines_fail_at_start(tmp_path, line, match):
    ann = tmp_path / "ann.txt"
    ann.write_text(f"ok.mp4 0\n{line}\n")
    with pytest.raises(ValueError, match=rf"ann.txt:2: .*{match}"):
        read_annotations(ann, tmp_path, 12)


def test_mix_batch_soft_targets():
    x = torch.randn(4, 2, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 3])
    for cut in (0.0, 1.0):
        mixed, target = mix_batch(
            x, y, 5, mixup_alpha=0.8, cutmix_alpha=cut, smoothing=0.1, rng=np.random.default_rng(0)
        )
        assert mixed.shape == x.shape and target.shape == (4, 5)
        torch.testing.assert_close(target.sum(-1), torch.ones(4))
