"""The model's configuration: a dataclass saved beside every checkpoint as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

TEMPORAL_INITS = ("paper", "identity", "scratch")


@dataclass
class ClaverConfig:
    """What a CLAVER model is, beyond its weights.

    arch: open_clip model config name (``ViT-B-16``...) or one of ours (``claver-tiny``).
    frames: T, frames per clip. layout: ``"kmt"`` or ``"kmct"`` (any kron_attn preset works).
    temporal_layers: depth of the temporal transformer; ``None`` = vision layers // 3; 0 = none
        (no temporal embedding either): the frame-mean baseline.
    drop_path: stochastic depth of the temporal blocks (increasing linearly to this rate).
    temporal_init: ``"paper"`` (freshly initialised blocks and a truncated-normal temporal
        embedding, as released) or ``"identity"`` (zero output projections and a zero temporal
        embedding: the temporal transformer starts as the identity, so the pretrained image
        features are unchanged at step 0), or ``"scratch"`` for a model trained from random
        initialisation: as ``"paper"`` but with a unit-std temporal embedding, the scale of the
        tokens it is added to. At 0.02 a random-init model sees almost no frame order at first
        and learns the direction of a motion far more slowly (the built-in demo: see claver.demo).
    """

    arch: str
    frames: int = 8
    layout: str = "kmt"
    temporal_layers: int | None = None
    drop_path: float = 0.0
    temporal_init: str = "paper"

    def __post_init__(self) -> None:
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"frames must be an int >= 1, got {self.frames!r}")
        if self.temporal_init not in TEMPORAL_INITS:
            raise ValueError(f"temporal_init must be one of {TEMPORAL_INITS}, got {self.temporal_init!r}")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {self.drop_path}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClaverConfig:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown CLAVER config fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> ClaverConfig:
        return cls.from_json(Path(path).read_text())
