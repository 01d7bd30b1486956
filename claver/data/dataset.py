"""``VideoDataset``: annotation file -> sampled, augmented clips; broken videos are skipped."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .annotations import read_annotations
from .transforms import AugmentConfig, eval_views, train_transform
from .video import DecodeError, decode, eval_indices, train_indices


@dataclass(frozen=True)
class Skipped:
    """What a broken video yields instead of a clip."""

    path: str
    reason: str


class VideoDataset(torch.utils.data.Dataset):
    """Clips of ``frames`` frames from the videos of an annotation file.

    Training items: ``(T, 3, S, S)`` float clips (one random frame per segment, augmented).
    Evaluation items: ``(num_clips * num_crops, T, 3, S, S)`` views. A missing, unreadable,
    corrupt or empty video yields :class:`Skipped` with a warning; :func:`collate` drops it and
    reports it, so a run goes on and can count what it skipped.
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
    ):
        self.samples = read_annotations(annotations, root, num_classes)
        self.frames, self.train = frames, train
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
        try:
            video = decode(sample.path)
        except DecodeError as e:
            warnings.warn(f"skipping video: {e}", stacklevel=2)
            return Skipped(str(sample.path), str(e))
        clip_of = lambda idx: torch.from_numpy(video[idx]).permute(0, 3, 1, 2)  # noqa: E731
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            clip = train_transform(clip_of(train_indices(len(video), self.frames, rng)), self.augment, rng)
        else:
            views = [eval_views(clip_of(idx), self.augment, self.num_crops) for idx in
                     eval_indices(len(video), self.frames, self.num_clips)]  # fmt: skip
            clip = torch.cat(views)
        return clip, sample.label, str(sample.path)


def collate(batch):
    """Stacks the good items; returns ``(clips, labels, skipped)`` with the :class:`Skipped` items.
    ``clips`` is None when every item of the batch was broken."""
    good = [b for b in batch if not isinstance(b, Skipped)]
    skipped = [b for b in batch if isinstance(b, Skipped)]
    if not good:
        return None, torch.zeros(0, dtype=torch.long), skipped
    clips = torch.stack([b[0] for b in good])
    labels = torch.tensor([b[1] for b in good], dtype=torch.long)
    return clips, labels, skipped
