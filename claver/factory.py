"""``create_model``, ``create_model_and_transforms`` and checkpoints.

A CLIP ViT is built from its config (open_clip's, or one of ours in model_configs/, read here
without touching open_clip's registry) with the activation its weights need: QuickGELU for
OpenAI's weights (the ``"openai"`` tag, open_clip tags marked so, OpenAI's TorchScript files).
Image-CLIP weights reach it by one straight sequence (:func:`load_image_weights`): read the file
without running pickled code -> unwrap and strip prefixes -> resize the position embedding to the
model's image size -> load strictly. The CLIP then becomes CLAVER's two branches. CLAVER
checkpoints are a safetensors file plus a JSON config beside it (activation included).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ClaverConfig
from .data.transforms import AugmentConfig, EvalTransform, TrainTransform
from .model import CLAVER, causal_mask


def _open_clip():
    """open_clip, imported on first use: it takes seconds to import (it loads its model
    registry and Hugging Face's transformers), which every command's --help would otherwise pay."""
    import open_clip as module

    return module


CONFIG_DIR = Path(__file__).parent / "model_configs"
CHECKPOINT_FORMAT = 2


@functools.cache
def _own_configs() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(CONFIG_DIR.glob("*.json"))}


def _vit_problem(cfg: dict) -> str | None:
    """Why an open_clip model config cannot be CLAVER's backbone, or None."""
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if isinstance(vision.get("layers"), list | tuple):
        return "its image tower is a ResNet; CLAVER needs a CLIP ViT"
    if vision.get("timm_model_name"):
        return "its image tower is a timm model; CLAVER needs open_clip's CLIP ViT"
    if cfg.get("custom_text") or "multimodal_cfg" in cfg or text.get("hf_model_name"):
        return "its text tower is not open_clip's CLIP text transformer"
    return None


def _clip_config(arch: str) -> dict:
    """The (copied) model config of ``arch``; a clear error for unknown or unsuitable archs."""
    cfg = _own_configs().get(arch) or _open_clip().get_model_config(arch)
    if cfg is None:
        raise ValueError(f"unknown arch {arch!r}; choose one of claver.list_archs()")
    problem = _vit_problem(cfg)
    if problem is not None:
        raise ValueError(f"arch {arch!r} cannot be used: {problem}")
    return copy.deepcopy(cfg)


def list_archs() -> list[str]:
    """Configs ``create_model`` accepts: open_clip's CLIP ViTs and ours (``claver-tiny``...)."""
    stock = [a for a in _open_clip().list_models() if _vit_problem(_open_clip().get_model_config(a) or {}) is None]
    return sorted(set(stock) | set(_own_configs()))


def get_tokenizer(arch: str):
    """The text tokenizer of ``arch`` (open_clip's; CLIP's BPE tokenizer for our configs)."""
    own = _own_configs().get(arch)
    if own is not None:
        return _open_clip().tokenizer.SimpleTokenizer(context_length=own["text_cfg"].get("context_length", 77))
    return _open_clip().get_tokenizer(arch)


def _build_clip(arch: str, quick_gelu: bool) -> nn.Module:
    """An open_clip ``CLIP`` of ``arch`` with random weights and the given activation."""
    cfg = _clip_config(arch)
    cfg["quick_gelu"] = quick_gelu
    cfg.pop("custom_text", None)
    return _open_clip().CLIP(**cfg)


def _pretrained_file(arch: str, pretrained: str | Path) -> tuple[Path, bool | None]:
    """A local file of image-CLIP weights (downloading an open_clip tag such as ``"openai"``),
    and whether the tag says the weights need QuickGELU (None for a local file)."""
    tags = _open_clip().list_pretrained_tags_by_model(arch) if arch not in _own_configs() else []
    if str(pretrained) in tags:
        pcfg = _open_clip().get_pretrained_cfg(arch, str(pretrained))
        try:
            path = _open_clip().download_pretrained(pcfg)
        except Exception as e:  # a download of any kind failed: say what to do instead
            raise RuntimeError(
                f"could not fetch the {pretrained!r} weights of {arch} ({type(e).__name__}: {e}); "
                "offline, download them elsewhere and pass pretrained='/path/to/checkpoint'"
            ) from e
        return Path(path), bool(pcfg.get("quick_gelu", False))
    path = Path(pretrained)
    if not path.is_file():
        known = f"; open_clip tags for {arch}: {', '.join(tags)}" if tags else ""
        raise FileNotFoundError(f"pretrained {str(pretrained)!r} is neither a file nor a weight tag of {arch}{known}")
    return path, None


def create_model(
    arch: str,
    pretrained: str | Path | None = None,
    frames: int = ClaverConfig.frames,
    layout: str = ClaverConfig.layout,
    *,
    temporal_layers: int | None = ClaverConfig.temporal_layers,
    drop_path: float = ClaverConfig.drop_path,
    drop_path_scheme: str = ClaverConfig.drop_path_scheme,
    temporal_init: str = ClaverConfig.temporal_init,
    quick_gelu: bool | None = None,
    normalization: str = ClaverConfig.normalization,
    interpolate_frames: bool = False,
) -> CLAVER:
    """Build CLAVER on a CLIP ViT.

    Args:
        arch: open_clip config name (``ViT-B-32``, ``ViT-B-16``, ``ViT-L-14``, ``ViT-L-14-336``...) or
            one of ours (``claver-tiny``, ``claver-small``); see :func:`list_archs`.
        pretrained: ``None`` (random), an open_clip weight tag of ``arch`` (``"openai"``...;
            downloaded), a local OpenAI/open_clip image-CLIP checkpoint, or a CLAVER checkpoint
            (``.safetensors`` with its ``.json``).
        frames, layout, temporal_layers, drop_path, drop_path_scheme, temporal_init,
            normalization: see :class:`ClaverConfig`, whose defaults they take.
        quick_gelu: the CLIP blocks' activation. ``None``: what the weights need (QuickGELU for
            OpenAI's: the ``"openai"`` tag, tags open_clip marks so, TorchScript archives), else
            what the arch's config says; a CLAVER checkpoint brings its own.
        interpolate_frames: loading a CLAVER checkpoint made for another frame count
            interpolates its temporal embedding instead of failing.

    A CLAVER checkpoint brings its own architecture; ``layout`` and ``drop_path`` (which hold
    no weights) are taken from the call, the rest must agree with the checkpoint.
    """
    if pretrained is not None and _is_claver_checkpoint(pretrained):
        return load_checkpoint(
            pretrained,
            arch=arch,
            frames=frames,
            layout=layout,
            drop_path=drop_path,
            quick_gelu=quick_gelu,
            interpolate_frames=interpolate_frames,
        )
    arch_quick_gelu = bool(_clip_config(arch).get("quick_gelu", False))
    state, weights_quick_gelu = None, None
    if pretrained is not None:
        path, weights_quick_gelu = _pretrained_file(arch, pretrained)
        state = _read_state_dict(path)
        if state.pop("__torchscript__", None) is not None:
            weights_quick_gelu = True  # OpenAI's own archives
    if quick_gelu is None:
        quick_gelu = weights_quick_gelu if weights_quick_gelu is not None else arch_quick_gelu
    config = ClaverConfig(
        arch, frames, layout, temporal_layers, drop_path, drop_path_scheme, temporal_init, quick_gelu, normalization
    )
    clip = _build_clip(arch, quick_gelu)
    if state is not None:
        load_image_weights(clip, state)
    return CLAVER(clip, config)


def create_model_and_transforms(
    arch: str, pretrained: str | Path | None = None, frames: int = ClaverConfig.frames, **kwargs
) -> tuple[CLAVER, TrainTransform, EvalTransform]:
    """:func:`create_model` with the model's video transforms, as open_clip's function of that name:
    ``train(clip, rng)`` augments and normalises a uint8 ``(T, 3, H, W)`` clip to
    ``(T, 3, S, S)``; ``eval(clip)`` gives ``(1, T, 3, S, S)`` (``EvalTransform(cfg, 3)``: three
    crops). S is the model's image size, the statistics its ``config.normalization``."""
    model = create_model(arch, pretrained, frames, **kwargs)
    return (model, *video_transforms(model))


def video_transforms(model: CLAVER) -> tuple[TrainTransform, EvalTransform]:
    """The training and evaluation transforms that fit ``model`` (image size, normalisation)."""
    cfg = AugmentConfig(input_size=model.video.visual.image_size[0], normalization=model.config.normalization)
    return TrainTransform(cfg), EvalTransform(cfg)


def load_image_weights(clip: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load an image-CLIP state dict into an open_clip CLIP, strictly."""
    state.pop("__torchscript__", None)
    for key in ("state_dict", "model"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    # Not weights: OpenAI's scalar metadata, and the causal mask TorchScript archives keep as a buffer.
    extras = ("input_resolution", "context_length", "vocab_size", "attn_mask")
    state = {k: v for k, v in state.items() if k not in extras}
    _open_clip().model.resize_pos_embed(state, clip)
    clip.load_state_dict(state, strict=True)


def save_checkpoint(model: CLAVER, path: str | Path) -> Path:
    """Write ``path`` (safetensors weights) and ``path.json`` (config); returns the weights path."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    meta = {"format": CHECKPOINT_FORMAT, "claver": dataclasses.asdict(model.config)}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def _config_of(meta: dict, where: Path) -> ClaverConfig:
    """The config of a checkpoint's JSON. Format 1 did not record the activation, normalisation or
    drop-path scheme: its models ran with their arch config's activation, ImageNet statistics and
    stochastic depth in the temporal blocks only, and called truncated-normal init "paper"."""
    fmt, fields = meta.get("format"), dict(meta.get("claver", {}))
    if fmt == 1:
        if fields.get("temporal_init") == "paper":
            fields["temporal_init"] = "trunc_normal"
        fields.setdefault("quick_gelu", bool(_clip_config(fields["arch"]).get("quick_gelu", False)))
        fields.setdefault("normalization", "imagenet")
        fields.setdefault("drop_path_scheme", "temporal")
    elif fmt != CHECKPOINT_FORMAT:
        raise ValueError(f"{where} has checkpoint format {fmt!r}, expected 1 or {CHECKPOINT_FORMAT}")
    return ClaverConfig.from_dict(fields)


def load_checkpoint(
    path: str | Path,
    arch: str | None = None,
    frames: int | None = None,
    layout: str | None = None,
    drop_path: float | None = None,
    quick_gelu: bool | None = None,
    interpolate_frames: bool = False,
) -> CLAVER:
    """Load a CLAVER checkpoint. ``arch``/``frames``, when given, must match it (frames may differ
    with ``interpolate_frames``); ``layout``, ``drop_path`` and ``quick_gelu``, when given,
    replace its own."""
    path = Path(path).with_suffix(".safetensors")
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(f"a CLAVER checkpoint is {path.name} with {meta_path.name} beside it: not found")
    config = _config_of(json.loads(meta_path.read_text()), meta_path)
    if arch is not None and arch != config.arch:
        raise ValueError(f"checkpoint {path.name} was made for arch {config.arch!r}, not {arch!r}")
    for name, value in (("layout", layout), ("drop_path", drop_path), ("quick_gelu", quick_gelu)):
        if value is not None:
            setattr(config, name, value)
    try:
        state = load_file(str(path))
    except SafetensorError as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e})") from None
    if frames is not None and frames != config.frames:
        if not interpolate_frames:
            raise ValueError(
                f"checkpoint {path.name} was made for {config.frames} frames, not {frames}; "
                "pass interpolate_frames=True to interpolate its temporal embedding"
            )
        key = "video.temporal.temporal_embedding"
        state[key] = _interpolate_frames(state[key], frames)
        config.frames = frames
    with torch.device("meta"):  # no random initialisation to throw away: every weight comes from the file
        model = CLAVER(_build_clip(config.arch, config.quick_gelu), config)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, assign=True)
    if model.text.attn_mask is not None:  # the one buffer a checkpoint does not hold
        model.text.attn_mask = causal_mask(model.text.context_length)
    unset = [n for n, t in itertools.chain(model.named_parameters(), model.named_buffers()) if t.is_meta]
    if unset:
        raise RuntimeError(f"loading {path.name} left {unset[:5]} without values: a buffer the checkpoint lacks")
    check_finite(model, path)
    return model


def check_finite(model: nn.Module, source: str | Path) -> None:
    """Refuses a model with NaN or infinite weights (a diverged run's) with a ValueError naming ``source``."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]  # the causal mask is -inf
    if bad:
        raise ValueError(f"{source} holds non-finite weights ({len(bad)} tensors, e.g. {bad[0]})")


def _interpolate_frames(emb: torch.Tensor, frames: int) -> torch.Tensor:
    """``(T, W)`` -> ``(frames, W)`` by linear interpolation along time."""
    return F.interpolate(emb.T[None], size=frames, mode="linear", align_corners=True)[0].T.contiguous()


def _is_claver_checkpoint(pretrained: str | Path) -> bool:
    p = Path(pretrained)
    return p.suffix == ".safetensors" and p.with_suffix(".json").is_file()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Weights of an image-CLIP checkpoint, never executing pickled code. OpenAI's TorchScript
    archives are read with torch.jit.load and marked with a ``__torchscript__`` entry."""
    if path.suffix == ".safetensors":
        return dict(load_file(str(path)))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            is_script = any(n.split("/", 2)[1:2] == ["code"] for n in zf.namelist())
        if is_script:
            state = {k: v for k, v in torch.jit.load(str(path), map_location="cpu").state_dict().items()}
            state["__torchscript__"] = torch.ones(())
            return state
    return dict(torch.load(path, map_location="cpu", weights_only=True))
