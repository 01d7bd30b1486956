"""Training and evaluation settings: YAML files -> nested dataclasses, overridable from the CLI.

python -m claver.train --config configs/k400/b16_8f.yaml --opts optim.lr 8e-6 data.batch_size 16
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from .config import ClaverConfig
from .data.transforms import AugmentConfig
from .data.video import choose_backend


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
    decoder: str = "auto"  # video backend: auto, pyav, torchcodec, decord (claver.data.video.choose_backend)
    # The augmentation (claver.data.transforms.AugmentConfig, whose defaults these are).
    scales: list[float] = field(default_factory=lambda: list(AugmentConfig.scales))
    flip: float = AugmentConfig.flip
    color_jitter: float = AugmentConfig.color_jitter
    grayscale: float = AugmentConfig.grayscale

    def __post_init__(self):
        choose_backend(self.decoder)  # a backend that cannot decode here is refused before any run


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
    max_skipped: float = 0.5  # an epoch fails when more than this fraction of its clips were skipped
    max_nonfinite_steps: int = 3  # the run fails after this many consecutive steps with a non-finite loss


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


class ConfigError(ValueError):
    """A configuration that cannot run; its message names the key and what it accepts."""


# Inclusive bounds (None: unbounded) of the numeric keys; every other number is only type-checked.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "data.input_size": (1, None), "data.batch_size": (1, None), "data.workers": (0, None),
    "data.num_clips": (1, None), "data.num_crops": (1, None), "data.scales": (1e-6, 1.0),
    "data.flip": (0.0, 1.0), "data.color_jitter": (0.0, 1.0), "data.grayscale": (0.0, 1.0),
    "model.frames": (1, None), "model.temporal_layers": (0, None),
    "optim.epochs": (1, None), "optim.warmup_epochs": (0, None), "optim.lr": (0.0, None),
    "optim.temporal_lr_scale": (0.0, None), "optim.text_lr_scale": (0.0, None), "optim.min_lr": (0.0, None),
    "optim.weight_decay": (0.0, None), "optim.effective_batch": (1, None), "optim.prompt_sets": (1, None),
    "optim.mixup": (0.0, None), "optim.cutmix": (0.0, None), "optim.smoothing": (0.0, 1.0),
    "optim.clip_grad": (0.0, None),
    "run.seed": (0, None), "run.save_every_steps": (0, None), "run.eval_every_epochs": (1, None),
    "run.stop_after_steps": (0, None), "run.max_skipped": (0.0, 1.0), "run.max_nonfinite_steps": (1, None),
}  # fmt: skip


_NAMES = {"None": "null", "bool": "true or false", "str": "a string", "int": "an integer", "float": "a number"}
_UNSET = object()


def _scalar(value, kind: str):
    """``value`` as the scalar type named ``kind`` (numbers written as strings converted), or _UNSET."""
    if kind == "None":
        return None if value is None else _UNSET
    if kind == "bool":
        return value if isinstance(value, bool) else _UNSET
    if kind == "str":  # a bare number on the command line (run.out 2024) names a folder as well
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else _UNSET
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return _UNSET
    if isinstance(value, float) and kind == "int":
        return _UNSET
    try:
        return int(value) if kind == "int" else float(value)
    except ValueError:
        return _UNSET


def _typed(value, kind: str, where: str):
    """``value`` checked against the annotation ``kind`` (``int``, ``float | None``, ``list[float]``...)."""
    if kind.startswith("list[") and kind.endswith("]"):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list such as [{value!r}], got {value!r}")
        return [_typed(v, kind[5:-1], f"{where}[{i}]") for i, v in enumerate(value)]
    options = [k.strip() for k in kind.split("|")]
    for option in options:
        converted = _scalar(value, option)
        if converted is not _UNSET:
            return converted
    raise ConfigError(f"{where}: expected {' or '.join(_NAMES[k] for k in options)}, got {value!r}")


def _check_range(value, key: str, where: str) -> None:
    lo, hi = RANGES.get(key, (None, None))
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{where}: expected a finite number, got {v}")
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        if numeric and ((lo is not None and v < lo) or (hi is not None and v > hi)):
            bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise ConfigError(f"{where}: expected {bounds}, got {v}")


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        factory = known[name].default_factory
        if isinstance(factory, type) and dataclasses.is_dataclass(factory):
            kwargs[name] = _build(factory, value or {}, f"{where}.{name}")
        else:
            kwargs[name] = _typed(value, str(known[name].type), f"{where}.{name}")
            _check_range(kwargs[name], f"{where.partition('.')[2]}.{name}", f"{where}.{name}")
    try:
        return cls(**kwargs)
    except ValueError as e:  # the dataclass's own checks (layout, drop_path...)
        raise ConfigError(f"{where}: {e}") from None


def load_config(path: str | Path | None, opts: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (with ``base:`` inheritance) and apply ``KEY VALUE`` overrides."""
    data = _read_yaml(Path(path)) if path else {}
    for key, value in zip(opts[::2], opts[1::2]) if opts else ():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--opts {key}: {p} is not a section")
        try:
            node[leaf] = yaml.safe_load(value)
        except yaml.YAMLError:
            node[leaf] = value  # not YAML (an unbalanced quote or bracket): the literal string
    if opts and len(opts) % 2:
        raise ConfigError(f"--opts takes KEY VALUE pairs, got an odd count: {opts}")
    cfg = _build(TrainConfig, data, "config")
    amp_dtype(cfg.optim.amp)
    return cfg


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
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
        raise ConfigError(f"optim.amp must be one of {list(AMP_DTYPES)}, got {name!r}")
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
