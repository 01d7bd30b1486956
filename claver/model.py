"""CLAVER: a CLIP whose image branch became a Kronecker-mask video encoder."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from .config import ClaverConfig
from .video import TemporalTransformer, VideoEncoder


class CLAVER(nn.Module):
    """Video-text model.

    ``video``: :class:`VideoEncoder` (the CLIP image tower per frame + temporal blocks).
    ``text``: the open_clip CLIP model without its image tower: text encoder and
    ``logit_scale``. Parameter names keep open_clip's below these two prefixes.
    """

    def __init__(self, clip: nn.Module, config: ClaverConfig):
        super().__init__()
        visual = clip.visual
        width = visual.transformer.width
        heads = visual.transformer.resblocks[0].attn.num_heads
        depth = config.temporal_layers if config.temporal_layers is not None else max(visual.transformer.layers // 3, 1)
        temporal = TemporalTransformer(
            width,
            heads,
            depth,
            config.frames,
            config.layout,
            drop_path=config.drop_path,
            identity_init=config.temporal_init == "identity",
            embedding_std=1.0 if config.temporal_init == "scratch" else 0.02,  # see ClaverConfig
        )
        self.config = config
        self.video = VideoEncoder(visual, temporal)
        clip.visual = None  # the tower now lives in self.video; keep one copy of its weights
        self.text = clip
        self._text_cache: dict[str, torch.Tensor] = {}
        self._text_frozen = False

    @property
    def frames(self) -> int:
        return self.config.frames

    def encode_video(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """``(B, T, 3, H, W)`` -> ``(B, E)``."""
        emb = self.video(x)
        return F.normalize(emb, dim=-1) if normalize else emb

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """CLIP tokens ``(..., 77)`` (e.g. ``(C, 77)`` or prompt sets ``(A, C, 77)``) -> ``(..., E)``.

        While the text encoder is frozen (:meth:`freeze_text`), features are cached per token tensor.
        """
        if tokens.dim() < 2:
            raise ValueError(f"expected tokens (..., context_length), got shape {tuple(tokens.shape)}")
        key = None
        if self._text_frozen:
            key = hashlib.sha1(tokens.detach().cpu().contiguous().numpy().tobytes()).hexdigest() + str(tokens.shape)
            if key in self._text_cache:
                emb = self._text_cache[key]
                return F.normalize(emb, dim=-1) if normalize else emb
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self._text_frozen):
            emb = self.text.encode_text(tokens.reshape(-1, tokens.shape[-1])).reshape(*tokens.shape[:-1], -1)
        if key is not None:
            emb = self._text_cache[key] = emb.detach()
        return F.normalize(emb, dim=-1) if normalize else emb

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarities: video ``(B, T, 3, H, W)`` with class tokens ``(C, 77)`` ->
        ``(B, C)``; with prompt sets ``(A, C, 77)`` -> ``(B, A, C)``."""
        video = self.encode_video(x, normalize=True)
        text = self.encode_text(tokens, normalize=True)
        return self.text.logit_scale.exp() * torch.einsum("be,...ce->b...c", video, text)

    def freeze_text(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) the text encoder; frozen text features are computed once and cached.
        ``logit_scale`` stays trainable."""
        self._text_frozen = frozen
        self._text_cache.clear()
        for name, p in self.text.named_parameters():
            if name != "logit_scale":
                p.requires_grad_(not frozen)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.video.visual.set_grad_checkpointing(enable)
        self.video.temporal.grad_checkpointing = enable
        self.text.transformer.grad_checkpointing = enable

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._text_cache.clear()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
