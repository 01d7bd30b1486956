"""``VideoDataset``: annotation file -> sampled, augmented clips; broken videos are skipped."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .annotations import read_annotations
from .transforms import AugmentConfig, RawClips, crop_and_flip, draw_photometric, eval_crops, finish, train_short_side
from .video import DecodeError, eval_indices, open_video, train_indices


@dataclass(frozen=True)
class Skipped:
    """What a broken video yields instead of a clip."""

    path: str
    reason: str


class VideoDataset(torch.utils.data.Dataset):
    """Clips of ``frames`` frames from the videos of an annotation file.

    Training items: ``(T, 3, S, S)`` clips (one random frame per segment, augmented).
    Evaluation items: ``(num_clips * num_crops, T, 3, S, S)`` views. Finished float32 clips, or
    with ``raw=True`` :class:`~claver.data.transforms.RawClips`: uint8 pixels with, for
    training, the clip's colour jitter and grayscale drawn but not applied, for the training loop
    to finish on its device (:func:`~claver.data.transforms.finish`), which takes the photometric
    steps off the workers and moves a quarter of the bytes.

    Only the sampled frames are decoded, resized in the decoder to the short side the transforms
    start from, so memory and time follow the clip, not the video. A missing, unreadable, corrupt
    or empty video yields :class:`Skipped` with a warning; :func:`collate` drops it and reports
    it, so a run goes on and can count what it skipped. ``decoder``: the video backend
    (claver.data.video).
    """

    def __init__(
        self,
        annotations: str | Path,
        root: str | Path,
        num_classes: int,
        frames: int = 8,
        train: bool = True,
        augment: AugmentConfig | None = None,
        num_clips: int = 1,
        num_crops: int = 1,
        seed: int = 0,
        decoder: str | None = None,
        raw: bool = False,
    ):
        self.samples = read_annotations(annotations, root, num_classes)
        self.frames, self.train, self.decoder, self.raw = frames, train, decoder, raw
        self.augment = augment or AugmentConfig()
        self.num_clips, self.num_crops = num_clips, num_crops
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Reseeds the sampling and augmentation so every epoch (and a resumed one) is reproducible."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        sample = self.samples[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        try:
            frames = self.read_clip(sample.path, rng)
        except DecodeError as e:
            warnings.warn(f"skipping video: {e}", stacklevel=2)
            return Skipped(str(sample.path), str(e))
        if self.train:
            clip = RawClips(crop_and_flip(frames, self.augment, rng), draw_photometric(self.augment, rng))
        else:
            views = [eval_crops(c, self.augment, self.num_crops) for c in frames.split(self.frames)]
            clip = RawClips(torch.cat(views))
        if not self.raw:
            clip = finish(clip, self.augment.normalization, "cpu")
        return clip, sample.label, str(sample.path)

    def read_clip(self, path: Path, rng: np.random.Generator) -> torch.Tensor:
        """The sampled frames of a video, ``(T * num_clips, 3, H, W)`` uint8, decoding only what they need,
        resized in the decoder to the short side the transforms start from."""
        with open_video(path, self.decoder) as video:
            idx, size = self.sample_indices(video.info.num_frames, rng)
            return torch.from_numpy(video.read(idx, size)).permute(0, 3, 1, 2)

    def sample_indices(self, num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Frame indices of a video of ``num_frames`` frames, and the short side to decode them at."""
        if self.train:
            return train_indices(num_frames, self.frames, rng), train_short_side(self.augment.input_size)
        return eval_indices(num_frames, self.frames, self.num_clips).reshape(-1), self.augment.input_size


def collate(batch):
    """Stacks the good items; returns ``(clips, labels, skipped)`` with the :class:`Skipped` items.
    ``clips``: a tensor, or :class:`~claver.data.transforms.RawClips` of stacked fields; None when
    every item of the batch was broken."""
    good = [b for b in batch if not isinstance(b, Skipped)]
    skipped = [b for b in batch if isinstance(b, Skipped)]
    if not good:
        return None, torch.zeros(0, dtype=torch.long), skipped
    first = good[0][0]
    if isinstance(first, RawClips):
        photometric = None if first.photometric is None else torch.stack([b[0].photometric for b in good])
        clips = RawClips(torch.stack([b[0].pixels for b in good]), photometric)
    else:
        clips = torch.stack([b[0] for b in good])
    labels = torch.tensor([b[1] for b in good], dtype=torch.long)
    return clips, labels, skipped
