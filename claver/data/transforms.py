"""Clip augmentation and normalisation of ``(T, 3, H, W)`` clips (same parameters for every frame
of a clip): the geometric steps on uint8 pixels, the photometric ones and normalisation on float
pixels, in the loader or, for a batch, on the training device (:class:`RawClips`, :func:`finish`);
and batch mixing (mixup / cutmix with label smoothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ..config import ClaverConfig

# Per-channel statistics on 0-255 pixels.
NORMALIZATION = {
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # what the released code uses
    "clip": ((122.770938, 116.7460125, 104.09373615), (68.5005327, 66.6321579, 70.32316305)),
}


@dataclass
class AugmentConfig:
    """A clip's augmentation and normalisation; the defaults of the training configs' ``data``
    section. ``input_size``: S; ``scales``: the crop sides as fractions of the resized short side
    (:func:`crop_and_flip`); ``flip``, ``color_jitter``, ``grayscale``: probabilities per clip;
    ``normalization``: a name of NORMALIZATION."""

    input_size: int = 224
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    flip: float = 0.5
    color_jitter: float = 0.8
    grayscale: float = 0.2
    normalization: str = ClaverConfig.normalization


def train_short_side(input_size: int) -> int:
    """The short side a training clip is resized to before its crop: 256/224 of the input size,
    the ratio of ImageNet's resize-256-crop-224."""
    return round(input_size * 256 / 224)


def normalize(clip: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 (or float, 0-255) ``(..., 3, H, W)`` -> float32 normalised, on the clip's device."""
    if name not in NORMALIZATION:
        raise ValueError(f"unknown normalization {name!r}; expected one of {sorted(NORMALIZATION)}")
    mean, std = (torch.tensor(v, device=clip.device).view(3, 1, 1) for v in NORMALIZATION[name])
    return (clip.float() - mean) / std


class RawClips(NamedTuple):
    """Clips left for the device to finish (:func:`finish`): uint8 ``pixels`` ``(..., T, 3, S, S)``
    and, for training, their ``photometric`` parameters ``(..., PHOTOMETRIC_PARAMS)``."""

    pixels: torch.Tensor
    photometric: torch.Tensor | None = None


def finish(clips: RawClips, normalization: str, device: torch.device | str) -> torch.Tensor:
    """Moves raw clips to ``device`` and finishes them there: colour jitter and grayscale (when
    they carry photometric parameters), normalisation. Returns float32 ``(..., T, 3, S, S)``."""
    x = _planes(clips.pixels.to(device, non_blocking=True))
    if clips.photometric is not None:
        x = photometric(x, clips.photometric)
    return normalize(x, normalization)


def train_transform(clip: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """The whole training augmentation on the clip's device: :func:`crop_and_flip`, then
    :func:`finish` with :func:`draw_photometric`'s parameters. uint8 ``(T, 3, H, W)`` -> float32
    ``(T, 3, S, S)``."""
    clip = crop_and_flip(clip, cfg, rng)
    return finish(RawClips(clip, draw_photometric(cfg, rng)), cfg.normalization, clip.device)


def _planes(pixels: torch.Tensor) -> torch.Tensor:
    """float32 in the default (planar) layout: the decoder's channels-last pixels would make every
    per-channel step of :func:`photometric` strided, about 3x slower."""
    return pixels.to(torch.float32, memory_format=torch.contiguous_format)


def crop_and_flip(clip: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Resize the short side to :func:`train_short_side`, multi-scale crop, resize to the input
    size, flip: uint8 ``(T, 3, H, W)`` -> uint8 ``(T, 3, S, S)``."""
    clip = TF.resize(clip, train_short_side(cfg.input_size), antialias=True)
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
    return clip


# A clip's photometric parameters: [jitter on, brightness, contrast, saturation factors, hue turn,
# the order of the four (step ids 0-3), grayscale on].
PHOTOMETRIC_PARAMS = 10
_JITTER = (0.4, 0.4, 0.2, 0.1)  # ColorJitter(brightness, contrast, saturation, hue), as the released code


def draw_photometric(cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """One clip's colour jitter (with probability ``cfg.color_jitter``: factors drawn uniformly as
    torchvision's ``ColorJitter(0.4, 0.4, 0.2, 0.1)``, the four steps in a random order) and
    grayscale (probability ``cfg.grayscale``): ``(PHOTOMETRIC_PARAMS,)`` float32."""
    p = torch.zeros(PHOTOMETRIC_PARAMS)
    p[1:4], p[5:9] = 1.0, torch.arange(4.0)  # no jitter: identity factors
    if rng.random() < cfg.color_jitter:
        u = rng.uniform(-1, 1, size=4)
        b, c, s, h = _JITTER
        p[:5] = torch.tensor([1.0, 1 + b * u[0], 1 + c * u[1], 1 + s * u[2], h * u[3]])
        p[5:9] = torch.from_numpy(rng.permutation(4).astype(np.float32))
    p[9] = float(rng.random() < cfg.grayscale)
    return p


def photometric(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Colour jitter and grayscale of float clips on 0-255, in place, on their device.

    x: ``(T, 3, H, W)`` or ``(B, T, 3, H, W)``; params: ``(PHOTOMETRIC_PARAMS,)`` or
    ``(B, PHOTOMETRIC_PARAMS)`` from :func:`draw_photometric`. The steps are torchvision's
    (contrast about each frame's mean luma, hue in HSV, grayscale as ITU-R 601 luma) as its float
    path computes them, clamped to [0, 255] after each, with no rounding in between (torchvision's
    uint8 path truncates after every step, about 1.5 levels darker). Clips that draw the same
    step at the same position are processed together."""
    clips = x.view(-1, *x.shape[-4:])
    p = params.detach().to("cpu", torch.float32).view(-1, PHOTOMETRIC_PARAMS)
    if len(p) != len(clips):
        raise ValueError(f"{len(clips)} clips but {len(p)} rows of photometric parameters")
    jitter = p[:, 0] > 0
    for position in range(4):
        for step in range(4):
            _apply(clips, jitter & (p[:, 5 + position] == step), _STEPS[step], p[:, 1 + step])
    _apply(clips, p[:, 9] > 0, lambda v, _: v.copy_(_luma(v).expand_as(v)), p[:, 9])
    return x


def _apply(clips: torch.Tensor, rows: torch.Tensor, step, factors: torch.Tensor) -> None:
    """``step(clips[rows], factor per clip)``, in place; a run of adjacent clips (a single clip,
    the whole batch) as a view, others gathered and scattered back."""
    index = rows.nonzero().flatten()
    if len(index) == 0:
        return
    f = factors[index].to(clips.device).view(-1, 1, 1, 1, 1)
    first, last = int(index[0]), int(index[-1])
    if last - first + 1 == len(index):
        step(clips[first : last + 1], f)
    else:
        index = index.to(clips.device)
        clips.index_copy_(0, index, step(clips.index_select(0, index), f))


def _luma(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``(..., 3, H, W)`` as ``(..., 1, H, W)``, torchvision's grayscale weights."""
    r, g, b = x.unbind(-3)
    return (r * 0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * x + (1 - factor) * other`` clamped to [0, 255], in place."""
    return x.mul_(factor).add_(other * (1 - factor)).clamp_(0, 255)


_STEPS = (  # (clips (B, T, 3, H, W), factor (B, 1, 1, 1, 1)) -> clips, in place
    lambda x, f: x.mul_(f).clamp_(0, 255),
    lambda x, f: _blend(x, _luma(x).mean((-2, -1), keepdim=True), f),
    lambda x, f: _blend(x, _luma(x), f),
    lambda x, f: _rotate_hue(x, f),
)


def _rotate_hue(x: torch.Tensor, turn: float | torch.Tensor) -> torch.Tensor:
    """HSV hue + ``turn`` (a fraction of a full turn, |turn| < 1/6; a float, or a tensor that
    broadcasts against ``(..., 1, H, W)``) of float ``(..., 3, H, W)`` (any scale: [0, 1] or
    [0, 255]), in place; value and saturation kept.

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
    side = torch.empty_like(x)
    for n, (after, before) in enumerate(((g, b), (b, r), (r, g))):
        torch.sub(after, before, out=side.select(-3, n))
    # |d_n + 6 turn| * chroma, then max - chroma * clamp(|d_n + 6 turn| - 1, 0, 1) as
    # (max + chroma) - clamp(|d_n + 6 turn| * chroma, chroma, 2 chroma)
    dist = torch.add(k, x, alpha=-2).addcmul_(side.sign_(), chroma * (6 * turn)).abs_()
    dist = torch.clamp(dist, min=chroma, max=2 * chroma, out=dist)
    return torch.sub(hi.unsqueeze_(-3).add_(chroma), dist, out=x)


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
    mixup_alpha: float,
    cutmix_alpha: float,
    smoothing: float,
    switch_prob: float = 0.5,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix (chosen with ``switch_prob``) of a batch with its flipped self.

    x: ``(B, T, 3, H, W)``; y: ``(B,)`` class ids; ``mixup_alpha``, ``cutmix_alpha``,
    ``smoothing``: the training config's (``optim.mixup``, ``optim.cutmix``, ``optim.smoothing``).
    Returns mixed clips and soft targets ``(B, C)`` float32 with label smoothing; cutmix cuts the
    same box from every frame.
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
