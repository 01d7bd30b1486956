"""Training and evaluation settings: YAML files -> nested dataclasses, overridable from the CLI.

python -m claver.train --config configs/k400/b16_8f.yaml --opts optim.lr 8e-6 data.batch_size 16
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from .config import ClaverConfig
from .data.transforms import AugmentConfig


@dataclass
class DataConfig:
    root: str = ""
    train: str = ""  # annotation file: "relative/path.mp4 label_id" per line
    val: str = ""
    labels: str = ""  # "id,name" CSV or a shipped list name (hmdb51, ucf101, kinetics400...)
    prompts: str | None = None  # prompt file or shipped name; None = templates only
    input_size: int = AugmentConfig.input_size
    batch_size: int = 8
    workers: int = 4
    num_clips: int = 1  # evaluation views: clips x crops
    num_crops: int = 1
    decoder: str | None = None  # video backend: pyav, torchcodec, decord; None: $CLAVER_VIDEO_BACKEND or pyav
    # The augmentation (claver.data.transforms.AugmentConfig, whose defaults these are).
    scales: list[float] = field(default_factory=lambda: list(AugmentConfig.scales))
    flip: float = AugmentConfig.flip
    color_jitter: float = AugmentConfig.color_jitter
    grayscale: float = AugmentConfig.grayscale


@dataclass
class ModelConfig(ClaverConfig):
    """The model (every field of :class:`claver.config.ClaverConfig`: arch, frames, layout,
    temporal_layers, drop_path, drop_path_scheme, temporal_init, quick_gelu, normalization) and
    how training starts from it. ``quick_gelu: null`` (the default here) lets the weights decide."""

    quick_gelu: bool | None = None
    pretrained: str | None = "openai"
    grad_checkpointing: bool = False
    freeze_text: bool = False

    def architecture(self) -> dict:
        """The ClaverConfig fields: ``claver.create_model(pretrained=..., **architecture())``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(ClaverConfig)}


@dataclass
class OptimConfig:
    epochs: int = 30
    warmup_epochs: int = 5
    lr: float = 12e-6
    temporal_lr_scale: float = 10.0  # the temporal transformer's lr = lr x this (released: 10)
    text_lr_scale: float = 1.0  # the text tower's lr = lr x this
    min_lr: float = 0.0
    weight_decay: float = 0.001
    effective_batch: int = 256  # reached by gradient accumulation over batch_size x world size
    prompt_sets: int = 5  # K of the A prompt sets per step
    mixup: float = 0.8
    cutmix: float = 1.0
    smoothing: float = 0.1
    amp: str | None = "bf16"  # bf16, fp16 (with a grad scaler) or null: see amp_dtype
    clip_grad: float | None = 1.0


@dataclass
class RunConfig:
    out: str = "runs/claver"
    seed: int = 0
    save_every_steps: int = 0  # 0: only at the end of each epoch
    eval_every_epochs: int = 1
    stop_after_steps: int = 0  # >0: save and stop after this many optimizer steps (time-boxed runs)


@dataclass
class EvalConfig:
    # Evaluation over several splits (python -m claver.evaluate): "{split}" in data.root, data.val,
    # data.labels and data.prompts is replaced by each entry in turn, and the results are reported
    # per split and as mean and standard deviation (claver.metrics.summarize_splits).
    splits: list[int | str] = field(default_factory=list)


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _build(cls, data: dict, where: str):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        factory = known[name].default_factory
        if isinstance(factory, type) and dataclasses.is_dataclass(factory):
            kwargs[name] = _build(factory, value or {}, f"{where}.{name}")
        elif isinstance(value, str) and "float" in str(known[name].type):
            # YAML reads 12e-6 (no dot) as a string
            try:
                kwargs[name] = float(value)
            except ValueError:
                raise ValueError(f"{where}.{name}: expected a number, got {value!r}") from None
        else:
            kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path | None, opts: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (with ``base:`` inheritance) and apply ``KEY VALUE`` overrides."""
    data = _read_yaml(Path(path)) if path else {}
    for key, value in zip(opts[::2], opts[1::2]) if opts else ():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    if opts and len(opts) % 2:
        raise ValueError(f"--opts takes KEY VALUE pairs, got an odd count: {opts}")
    return _build(TrainConfig, data, "config")


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    base = data.pop("base", None)
    if base is None:
        return data
    merged = _read_yaml(path.parent / base)
    for section, values in data.items():
        if isinstance(values, dict):
            merged.setdefault(section, {}).update(values)
        else:
            merged[section] = values
    return merged


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}


def amp_dtype(name: str | None) -> torch.dtype | None:
    """The autocast dtype of ``optim.amp`` (None: no autocast)."""
    if name not in AMP_DTYPES:
        raise ValueError(f"optim.amp must be one of {list(AMP_DTYPES)}, got {name!r}")
    return AMP_DTYPES[name]


def to_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)


SPLIT_FIELDS = ("root", "val", "labels", "prompts")


def for_split(cfg: TrainConfig, split: int | str) -> TrainConfig:
    """The config of one evaluation split: ``{split}`` in the data paths replaced by ``split``."""
    if not any("{split}" in str(getattr(cfg.data, f) or "") for f in SPLIT_FIELDS):
        raise ValueError(f"eval.splits is set but none of data.{', data.'.join(SPLIT_FIELDS)} contains '{{split}}'")
    sub = {f: getattr(cfg.data, f).replace("{split}", str(split)) for f in SPLIT_FIELDS if getattr(cfg.data, f)}
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **sub))
