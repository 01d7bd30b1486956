"""Building blocks shared by training and evaluation: process group, data loaders, prompts,
the evaluation loop."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from . import text
from .data.dataset import VideoDataset, collate
from .data.transforms import AugmentConfig, finish
from .factory import get_tokenizer
from .labels import class_names
from .metrics import accuracy
from .model import CLAVER
from .train_config import ConfigError, TrainConfig

TRAINING_STATE_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "step_in_epoch", "global_step")


def read_training_state(path: Path) -> dict:
    """A training state (``last.pt``) read without running pickled code; a :class:`ConfigError`
    saying what ``path`` is when it is not one."""
    if path.suffix == ".safetensors":
        raise ConfigError(f"{path} is a CLAVER model (weights only), not a training state")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # whatever torch.load cannot read is not a training state
        raise ConfigError(f"{path} is not a training state ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    missing = [k for k in TRAINING_STATE_KEYS if k not in state] if isinstance(state, dict) else ["everything"]
    if missing:
        raise ConfigError(f"{path} is not a training state (it lacks {', '.join(missing)})")
    return state


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) -> a process group (NCCL on GPUs,
    gloo on CPUs); without it, a plain single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(int(os.environ.get("RANK", "0")), world, local, device)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled (or ordered) indices for one rank, the same order for a given (seed, epoch), and
    able to start mid-epoch: what an exact resume needs."""

    def __init__(self, n: int, rank: int, world: int, shuffle: bool, seed: int):
        self.n, self.rank, self.world, self.shuffle, self.seed = n, rank, world, shuffle, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _indices(self) -> list[int]:
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        )
        if self.shuffle:  # training: pad by wrapping so every rank takes the same number of steps
            order = np.resize(order, math.ceil(self.n / self.world) * self.world)
        return order[self.rank :: self.world].tolist()

    def __iter__(self):
        return iter(self._indices()[self.start :])

    def __len__(self) -> int:
        return len(self._indices()) - self.start


def augment_config(cfg: TrainConfig) -> AugmentConfig:
    d = cfg.data
    return AugmentConfig(d.input_size, tuple(d.scales), d.flip, d.color_jitter, d.grayscale, cfg.model.normalization)


def make_loader(cfg: TrainConfig, train: bool, dist_: Dist) -> tuple[torch.utils.data.DataLoader, EpochSampler]:
    """The training or validation loader of ``cfg``: batches of
    :class:`~claver.data.transforms.RawClips`, uint8 clips ``(B, T, 3, S, S)`` with their colour
    jitter drawn (training) or views ``(B, V, T, 3, S, S)``, for
    :func:`~claver.data.transforms.finish` on the device."""
    d = cfg.data
    names = class_names(d.labels)
    dataset = VideoDataset(
        d.train if train else d.val, d.root, len(names), cfg.model.frames, train, augment_config(cfg),
        d.num_clips, d.num_crops, cfg.run.seed, d.decoder, raw=True,
    )  # fmt: skip
    sampler = EpochSampler(len(dataset), dist_.rank, dist_.world, shuffle=train, seed=cfg.run.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=d.batch_size, sampler=sampler, num_workers=d.workers, collate_fn=collate,
        drop_last=False, persistent_workers=False, pin_memory=dist_.device.type == "cuda",
    )  # fmt: skip
    return loader, sampler


def prompt_tokens(cfg: TrainConfig) -> torch.Tensor:
    """The ``(A, C, 77)`` prompt sets of ``cfg``'s label list and prompt file
    (:func:`claver.text.prompt_tokens`)."""
    return text.prompt_tokens(class_names(cfg.data.labels), cfg.data.prompts, get_tokenizer(cfg.model.arch))


@torch.no_grad()
def predict_probs(
    model: CLAVER, loader, tokens: torch.Tensor, num_classes: int, dist_: Dist, amp_dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Class probabilities of every video of ``loader`` (:meth:`CLAVER.class_probs` of each view
    against the prompt sets ``tokens`` ``(A, C, 77)``, then averaged over views), gathered from
    all ranks: ``(probs (V, C) float32, labels (V,) int64, skipped)``. ``amp_dtype``: the
    autocast dtype of both encoders (None: float32 throughout)."""
    model.eval()
    probs, labels, skipped = [], [], 0
    autocast = torch.autocast(dist_.device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    with autocast:
        features = model.encode_text(tokens.to(dist_.device), normalize=True)  # (A, C, E), once for all videos
    for clips, y, bad in loader:
        skipped += len(bad)
        if clips is None:
            continue
        b, v = clips.pixels.shape[:2]
        x = finish(clips, model.config.normalization, dist_.device).flatten(0, 1)
        with autocast:
            video = model.encode_video(x)
        probs.append(model.class_probs(video, features).view(b, v, -1).mean(1).cpu())
        labels.append(y)
    p = torch.cat(probs) if probs else torch.zeros(0, num_classes)
    y = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    if dist_.world > 1:
        p, y = _gather(p, dist_), _gather(y, dist_)
        skipped = int(_gather(torch.tensor([skipped]), dist_).sum())
    return p, y, skipped


def evaluate(
    model: CLAVER, loader, tokens: torch.Tensor, num_classes: int, dist_: Dist, amp_dtype: torch.dtype | None = None
) -> dict:
    """Multi-view evaluation: top-1, top-5, mean class accuracy, videos and skipped videos."""
    p, y, skipped = predict_probs(model, loader, tokens, num_classes, dist_, amp_dtype)
    return {**accuracy(p, y, num_classes), "videos": int(y.shape[0]), "skipped": skipped}


def _gather(x: torch.Tensor, dist_: Dist) -> torch.Tensor:
    sizes = [None] * dist_.world
    dist.all_gather_object(sizes, x)
    return torch.cat(sizes)
