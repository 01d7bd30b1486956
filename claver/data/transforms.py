"""Clip augmentation and normalisation on ``(T, 3, H, W)`` uint8 tensors (same parameters for
every frame of a clip), and batch mixing (mixup / cutmix with label smoothing)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

# Per-channel statistics on 0-255 pixels.
NORMALIZATION = {
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # what the released code uses
    "clip": ((122.770938, 116.7460125, 104.09373615), (68.5005327, 66.6321579, 70.32316305)),
}


@dataclass
class AugmentConfig:
    input_size: int = 224
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    flip: float = 0.5
    color_jitter: float = 0.8
    grayscale: float = 0.2
    normalization: str = "imagenet"


def normalize(clip: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 ``(..., 3, H, W)`` -> float32 normalised, on the clip's device."""
    if name not in NORMALIZATION:
        raise ValueError(f"unknown normalization {name!r}; expected one of {sorted(NORMALIZATION)}")
    mean, std = (torch.tensor(v, device=clip.device).view(3, 1, 1) for v in NORMALIZATION[name])
    return (clip.float() - mean) / std


def train_transform(clip: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """:func:`augment`, then :func:`normalize`: uint8 ``(T, 3, H, W)`` -> float32 ``(T, 3, S, S)``."""
    return normalize(augment(clip, cfg, rng), cfg.normalization)


def augment(clip: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Resize the short side to 256/224 of the input size, multi-scale crop, resize to the input
    size, flip, colour jitter, grayscale: uint8 ``(T, 3, H, W)`` -> uint8 ``(T, 3, S, S)``."""
    base = round(cfg.input_size * 256 / 224)
    clip = TF.resize(clip, base, antialias=True)
    h, w = clip.shape[-2:]
    short = min(h, w)
    # Width and height scales drawn separately, at most one step apart (as TSN's multi-scale crop).
    i = int(rng.integers(len(cfg.scales)))
    j = min(max(i + int(rng.integers(-1, 2)), 0), len(cfg.scales) - 1)
    ch, cw = int(short * cfg.scales[i]), int(short * cfg.scales[j])
    top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    clip = TF.resized_crop(clip, top, left, ch, cw, [cfg.input_size, cfg.input_size], antialias=True)
    if rng.random() < cfg.flip:
        clip = TF.horizontal_flip(clip)
    if rng.random() < cfg.color_jitter:
        clip = color_jitter(clip, rng)
    if rng.random() < cfg.grayscale:
        clip = TF.rgb_to_grayscale(clip, num_output_channels=3)
    return clip


def color_jitter(clip: torch.Tensor, rng: np.random.Generator, b=0.4, c=0.4, s=0.2, h=0.1) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter in a random order, one draw per clip:
    uint8 ``(T, 3, H, W)`` -> uint8, on the CPU.

    The four adjustments are torchvision's (``ColorJitter``: contrast about each frame's mean
    luma, hue in HSV), computed as its float path computes them, clamped to [0, 1] after each,
    and rounded to uint8 once at the end; torchvision's uint8 path truncates after every step
    (about 1.5 levels darker) and takes 3-4x as long, its HSV round trip most of that."""
    u = rng.uniform(-1, 1, size=4)
    # planes, not the decoder's channels-last pixels: every step below is per channel; numpy
    # converts 2-3x faster than torch
    x = torch.from_numpy(np.ascontiguousarray(clip.numpy(), dtype=np.float32)).div_(255)
    steps = (
        lambda x: x.mul_(1 + b * float(u[0])).clamp_(0, 1),
        lambda x: _blend(x, _luma(x).mean((-2, -1), keepdim=True), 1 + c * float(u[1])),
        lambda x: _blend(x, _luma(x), 1 + s * float(u[2])),
        lambda x: _rotate_hue(x, h * float(u[3])),
    )
    for i in rng.permutation(4):
        x = steps[i](x)
    return torch.from_numpy(x.mul_(255).add_(0.5).numpy().astype(np.uint8))


def _luma(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``(..., 3, H, W)`` as ``(..., 1, H, W)``, torchvision's grayscale weights."""
    r, g, b = x.unbind(-3)
    return (r * 0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    """``factor * x + (1 - factor) * other`` clamped to [0, 1], in place."""
    return x.mul_(factor).add_(other, alpha=1 - factor).clamp_(0, 1)


def _rotate_hue(x: torch.Tensor, turn: float) -> torch.Tensor:
    """HSV hue + ``turn`` (a fraction of a full turn, |turn| < 1/6) of float ``(..., 3, H, W)`` in
    [0, 1], in place; value and saturation kept.

    HSV to RGB gives channel n the value ``max - chroma * clamp(|d_n| - 1, 0, 1)``, d_n the hue's
    signed distance from the channel's own hue (red 0, green 2, blue 4, in sixths of a turn).
    Before the turn, ``|d_n| * chroma = max - 2 min + r + g + b - 2 x_n`` and d_n has the sign of
    ``x_next - x_prev`` (R -> G -> B -> R), so the turned value needs no hue angle, no division
    and no branch per pixel; grey pixels (chroma 0) stay as they are."""
    r, g, b = x.unbind(-3)
    hi = torch.maximum(r, g)
    hi = torch.maximum(hi, b, out=hi)
    chroma = torch.minimum(r, g)
    chroma = torch.minimum(chroma, b, out=chroma)
    k = torch.add(r, g).add_(b).add_(hi).sub_(chroma, alpha=2).unsqueeze_(-3)  # max - 2 min + r + g + b
    chroma = chroma.neg_().add_(hi).unsqueeze_(-3)
    t = torch.empty_like(x)  # the side of each channel's hue, then its new distance below the max
    for n, (after, before) in enumerate(((g, b), (b, r), (r, g))):
        torch.sub(after, before, out=t[:, n])
    t.sign_().mul_(chroma).mul_(6 * turn).sub_(x, alpha=2).add_(k).abs_().sub_(chroma).clamp_min_(0)
    return torch.sub(hi.unsqueeze_(-3), torch.minimum(t, chroma, out=t), out=x)


def eval_views(clip: torch.Tensor, cfg: AugmentConfig, num_crops: int = 1) -> torch.Tensor:
    """:func:`eval_crops`, then :func:`normalize`: ``(num_crops, T, 3, S, S)`` float32."""
    return normalize(eval_crops(clip, cfg, num_crops), cfg.normalization)


def eval_crops(clip: torch.Tensor, cfg: AugmentConfig, num_crops: int = 1) -> torch.Tensor:
    """Resize the short side to the input size; 1 centre crop or 3 crops (left/top, centre,
    right/bottom along the long side). uint8 ``(T, 3, H, W)`` -> uint8 ``(num_crops, T, 3, S, S)``."""
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    s = cfg.input_size
    clip = TF.resize(clip, s, antialias=True)
    h, w = clip.shape[-2:]
    if num_crops == 1:
        crops = [TF.center_crop(clip, [s, s])]
    elif w >= h:
        crops = [clip[..., :, o : o + s] for o in (0, (w - s) // 2, w - s)]
    else:
        crops = [clip[..., o : o + s, :] for o in (0, (h - s) // 2, h - s)]
    return torch.stack(crops)


@dataclass(frozen=True)
class TrainTransform:
    """A model's training transform: uint8 clip ``(T, 3, H, W)`` -> augmented, normalised
    ``(T, 3, S, S)`` float32 (:func:`train_transform`)."""

    config: AugmentConfig

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        return train_transform(clip, self.config, rng if rng is not None else np.random.default_rng())


@dataclass(frozen=True)
class EvalTransform:
    """A model's evaluation transform: uint8 clip ``(T, 3, H, W)`` -> ``(num_crops, T, 3, S, S)``
    (:func:`eval_views`)."""

    config: AugmentConfig
    num_crops: int = 1

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        return eval_views(clip, self.config, self.num_crops)


def mix_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    smoothing: float = 0.1,
    switch_prob: float = 0.5,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix (chosen with ``switch_prob``) of a batch with its flipped self.

    x: ``(B, T, 3, H, W)``; y: ``(B,)`` class ids. Returns mixed clips and soft targets ``(B, C)``
    with label smoothing; cutmix cuts the same box from every frame.
    """
    rng = rng if rng is not None else np.random.default_rng()
    target = F.one_hot(y, num_classes).float() * (1 - smoothing) + smoothing / num_classes
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < switch_prob)
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    if alpha <= 0:
        return x, target
    lam = float(rng.beta(alpha, alpha))
    if use_cutmix:
        h, w = x.shape[-2:]
        ch, cw = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x.flip(0)[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        x = lam * x + (1 - lam) * x.flip(0)
    return x, lam * target + (1 - lam) * target.flip(0)
