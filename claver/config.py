"""The model's configuration: a dataclass saved beside every checkpoint as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from .video import check_layout

TEMPORAL_INITS = ("release", "trunc_normal", "identity", "scratch")
DROP_PATH_SCHEMES = ("release", "temporal")


@dataclass
class ClaverConfig:
    """What a CLAVER model is, beyond its weights.

    arch: open_clip ViT config name (``ViT-B-16``...) or one of ours (``claver-tiny``).
    frames: T, frames per clip. layout: ``"kmt"`` or ``"kmct"`` (any kron_attn preset works).
    temporal_layers: depth of the temporal transformer; ``None`` = vision layers // 3; 0 = none
        (no temporal embedding either): the frame-mean baseline.
    drop_path: stochastic depth rate p. ``drop_path_scheme="release"``: as the released code,
        ``linspace(0, p, layers)`` over the CLIP blocks and the first ``temporal_layers`` of
        those rates for the temporal blocks; ``"temporal"``: none in the CLIP blocks, 0..p
        spread over the temporal blocks.
    temporal_init: ``"release"`` (the released code's: PyTorch's default initialisation of the
        temporal blocks, a truncated-normal std-0.02 temporal embedding); ``"trunc_normal"``
        (truncated-normal std-0.02 block weights and zero biases, same embedding);
        ``"identity"`` (zero output projections and a zero temporal embedding: the temporal
        transformer starts as the identity, so the pretrained image features are unchanged at
        step 0: for fine-tuning); ``"scratch"`` (for a model trained from random initialisation:
        as ``"trunc_normal"`` but a unit-std temporal embedding, the scale of the tokens it is
        added to; at 0.02 a random-init model sees almost no frame order at first and learns the
        direction of a motion far more slowly, see claver.demo).
    quick_gelu: the CLIP blocks' activation is QuickGELU (OpenAI's weights need it) rather than
        GELU. The temporal blocks always use QuickGELU, as released.
    normalization: the pixel statistics the model expects (a name of
        ``claver.data.transforms.NORMALIZATION``; the released code uses ImageNet's).
    """

    arch: str = "ViT-B-16"
    frames: int = 8
    layout: str = "kmt"
    temporal_layers: int | None = None
    drop_path: float = 0.0
    drop_path_scheme: str = "release"
    temporal_init: str = "release"
    quick_gelu: bool = False
    normalization: str = "imagenet"

    def __post_init__(self) -> None:
        check_layout(self.layout, self.frames)
        if self.temporal_init not in TEMPORAL_INITS:
            raise ValueError(f"temporal_init must be one of {TEMPORAL_INITS}, got {self.temporal_init!r}")
        if self.drop_path_scheme not in DROP_PATH_SCHEMES:
            raise ValueError(f"drop_path_scheme must be one of {DROP_PATH_SCHEMES}, got {self.drop_path_scheme!r}")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {self.drop_path}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ClaverConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown CLAVER config fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ClaverConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> ClaverConfig:
        return cls.from_json(Path(path).read_text())
