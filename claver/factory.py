"""``create_model`` and checkpoints.

Image-CLIP weights reach the video model by one straight sequence (:func:`load_image_weights`):
read the file without running pickled code -> unwrap and strip prefixes -> resize the position
embedding to the model's image size -> load strictly into the open_clip model, which then becomes
CLAVER's two branches. CLAVER checkpoints are a safetensors file plus a JSON config beside it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .config import ClaverConfig
from .model import CLAVER

CONFIG_DIR = Path(__file__).parent / "model_configs"
CHECKPOINT_FORMAT = 1
open_clip.add_model_config(CONFIG_DIR)


def list_archs() -> list[str]:
    """Model configs ``create_model`` accepts: open_clip's and ours (``claver-tiny``...)."""
    return open_clip.list_models()


def create_model(
    arch: str,
    pretrained: str | Path | None = None,
    frames: int = 8,
    layout: str = "kmt",
    *,
    temporal_layers: int | None = None,
    drop_path: float = 0.0,
    temporal_init: str = "paper",
    quick_gelu: bool | None = None,
    interpolate_frames: bool = False,
) -> CLAVER:
    """Build CLAVER on an open_clip ViT.

    Args:
        arch: open_clip config name (``ViT-B-32``, ``ViT-B-16``, ``ViT-L-14``, ``ViT-L-14-336``...) or
            one of ours (``claver-tiny``, ``claver-small``); see :func:`list_archs`.
        pretrained: ``None`` (random), ``"openai"`` (open_clip downloads the weights), a local
            OpenAI/open_clip image-CLIP checkpoint, or a CLAVER checkpoint (``.safetensors`` with
            its ``.json``).
        frames, layout, temporal_layers, drop_path, temporal_init: see :class:`ClaverConfig`.
        quick_gelu: CLIP's activation in the backbone; by default on for OpenAI weights
            (``"openai"`` or a TorchScript archive) and as the config says otherwise.
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
            interpolate_frames=interpolate_frames,
        )
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown arch {arch!r}; choose one of claver.list_archs()")
    config = ClaverConfig(arch, frames, layout, temporal_layers, drop_path, temporal_init)
    if pretrained == "openai":
        try:
            clip = open_clip.create_model(arch, pretrained="openai")
        except Exception as e:  # any failure of the download: say what to do instead
            raise RuntimeError(
                f"could not fetch the OpenAI weights of {arch} ({type(e).__name__}: {e}); "
                "offline, download them elsewhere and pass pretrained='/path/to/checkpoint'"
            ) from e
    else:
        state = _read_state_dict(Path(pretrained)) if pretrained is not None else None
        if quick_gelu is None:
            quick_gelu = state is not None and state.pop("__torchscript__", None) is not None
        clip = open_clip.create_model(arch, pretrained=None, force_quick_gelu=bool(quick_gelu))
        if state is not None:
            load_image_weights(clip, state)
    return CLAVER(clip, config)


def load_image_weights(clip: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load an image-CLIP state dict into an open_clip CLIP, strictly."""
    state.pop("__torchscript__", None)
    for key in ("state_dict", "model"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    # Not weights: OpenAI's scalar metadata, and the causal mask TorchScript archives keep as a buffer.
    extras = ("input_resolution", "context_length", "vocab_size", "attn_mask")
    state = {k: v for k, v in state.items() if k not in extras}
    open_clip.model.resize_pos_embed(state, clip)
    clip.load_state_dict(state, strict=True)


def save_checkpoint(model: CLAVER, path: str | Path) -> Path:
    """Write ``path`` (safetensors weights) and ``path.json`` (config); returns the weights path."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    meta = {"format": CHECKPOINT_FORMAT, "claver": json.loads(model.config.to_json())}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def load_checkpoint(
    path: str | Path,
    arch: str | None = None,
    frames: int | None = None,
    layout: str | None = None,
    drop_path: float | None = None,
    interpolate_frames: bool = False,
) -> CLAVER:
    """Load a CLAVER checkpoint. ``arch``/``frames``, when given, must match it (frames may differ
    with ``interpolate_frames``); ``layout`` and ``drop_path``, when given, replace its own."""
    path = Path(path).with_suffix(".safetensors")
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(f"a CLAVER checkpoint is {path.name} with {meta_path.name} beside it: not found")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{meta_path} has checkpoint format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    config = ClaverConfig(**meta["claver"])
    if arch is not None and arch != config.arch:
        raise ValueError(f"checkpoint {path.name} was made for arch {config.arch!r}, not {arch!r}")
    if layout is not None:
        config.layout = layout
    if drop_path is not None:
        config.drop_path = drop_path
    state = load_file(str(path))
    if frames is not None and frames != config.frames:
        if not interpolate_frames:
            raise ValueError(
                f"checkpoint {path.name} was made for {config.frames} frames, not {frames}; "
                "pass interpolate_frames=True to interpolate its temporal embedding"
            )
        key = "video.temporal.temporal_embedding"
        state[key] = _interpolate_frames(state[key], frames)
        config.frames = frames
    model = CLAVER(open_clip.create_model(config.arch, pretrained=None), config)
    model.load_state_dict(state, strict=True)
    return model


def _interpolate_frames(emb: torch.Tensor, frames: int) -> torch.Tensor:
    """``(T, W)`` -> ``(frames, W)`` by linear interpolation along time."""
    return F.interpolate(emb.T[None], size=frames, mode="linear", align_corners=True)[0].T.contiguous()


def _is_claver_checkpoint(pretrained: str | Path) -> bool:
    if pretrained == "openai":
        return False
    p = Path(pretrained)
    return p.suffix == ".safetensors" and p.with_suffix(".json").is_file()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Weights of an image-CLIP checkpoint, never executing pickled code. OpenAI's TorchScript
    archives are read with torch.jit.load and marked with a ``__torchscript__`` entry."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
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
