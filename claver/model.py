"""CLAVER: a CLIP whose image branch became a Kronecker-mask video encoder."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .config import ClaverConfig
from .text import average_class_probs
from .video import TemporalTransformer, VideoEncoder, add_stochastic_depth, release_drop_rates, temporal_drop_rates

# Prompt sets whose frozen text features are kept (least recently used dropped first).
TEXT_CACHE_SETS = 256
# Prompts encoded together, sorted by length so that each chunk stops at its own longest prompt.
TEXT_CHUNK = 64


def _tracing(x: torch.Tensor) -> bool:
    """Whether ``x`` has shapes but no values: a fake tensor (shape propagation, export) or a
    torch.compile trace."""
    return isinstance(x, torch._subclasses.FakeTensor) or torch.compiler.is_compiling()


def causal_mask(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(n, n)`` float32 additive mask of CLIP's text attention: position i sees positions <= i."""
    return torch.full((n, n), float("-inf"), device=device).triu_(1)


class CLAVER(nn.Module):
    """Video-text model.

    ``video``: :class:`VideoEncoder` (the CLIP image tower per frame + temporal blocks).
    ``text``: the open_clip CLIP model without its image tower: text encoder and
    ``logit_scale``. Parameter names keep open_clip's below these two prefixes.
    """

    def __init__(self, clip: nn.Module, config: ClaverConfig):
        super().__init__()
        visual = clip.visual
        width, layers = visual.transformer.width, visual.transformer.layers
        heads = visual.transformer.resblocks[0].attn.num_heads
        depth = config.temporal_layers if config.temporal_layers is not None else max(layers // 3, 1)
        if config.drop_path_scheme == "release":
            clip_rates, temporal_rates = release_drop_rates(config.drop_path, layers, depth)
            add_stochastic_depth(visual.transformer.resblocks, clip_rates)
        else:
            temporal_rates = temporal_drop_rates(config.drop_path, depth)
        temporal = TemporalTransformer(width, heads, config.frames, config.layout, temporal_rates, config.temporal_init)
        self.config = config
        self.video = VideoEncoder(visual, temporal)
        clip.visual = None  # the tower now lives in self.video; keep one copy of its weights
        self.text = clip
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._text_frozen = False

    @property
    def frames(self) -> int:
        return self.config.frames

    def encode_video(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """``(B, T, 3, H, W)`` -> ``(B, E)``: the mean over frames of the L2-normalised frame
        embeddings, the video feature the released code scores (its norm is at most 1: it is not
        renormalised). ``normalize=True`` renormalises it to unit length, for cosine similarity."""
        emb = self.video(x)
        return F.normalize(emb, dim=-1) if normalize else emb

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """CLIP tokens ``(..., 77)`` (e.g. ``(C, 77)`` or prompt sets ``(A, C, 77)``) -> ``(..., E)``.

        While the text encoder is frozen (:meth:`freeze_text`), the features of each prompt set
        (each ``(C, 77)`` slice) are computed once and kept, for the last TEXT_CACHE_SETS sets.
        """
        if tokens.dim() < 2:
            raise ValueError(f"expected tokens (..., context_length), got shape {tuple(tokens.shape)}")
        if self._text_frozen:
            emb = self._cached_text(tokens.reshape(-1, *tokens.shape[-2:])).reshape(*tokens.shape[:-1], -1)
        else:
            emb = self._encode_tokens(tokens.reshape(-1, tokens.shape[-1])).reshape(*tokens.shape[:-1], -1)
        return F.normalize(emb, dim=-1) if normalize else emb

    def _encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(K, 77)`` -> ``(K, E)``: open_clip's ``encode_text``, each prompt run only up to its
        end-of-text token (prompts sorted by length, in chunks of TEXT_CHUNK). Exact: CLIP's text
        attention is causal and its feature is read at the end-of-text token, so the padding after
        it cannot change that feature; it would only multiply the work (77 / 9 for a template prompt).
        """
        t = self.text
        if _tracing(tokens):  # the prefixes depend on token values, which a trace does not have
            return t.encode_text(tokens)
        mask = t.attn_mask
        causal = mask is not None and torch.equal(mask, causal_mask(len(mask), mask.device).to(mask.dtype))
        if not tokens.numel() or t.text_pool_type != "argmax" or not causal:
            return t.encode_text(tokens)
        ends = tokens.argmax(dim=-1)  # the end-of-text token has the largest id
        order = ends.argsort()
        parts = [self._encode_prefix(tokens[i], ends[i], int(ends[i].max()) + 1) for i in order.split(TEXT_CHUNK)]
        return torch.cat(parts)[order.argsort()]

    def _encode_prefix(self, tokens: torch.Tensor, ends: torch.Tensor, n: int) -> torch.Tensor:
        """open_clip's ``encode_text`` on the first ``n`` positions of ``tokens`` ``(K, 77)``,
        pooled at ``ends`` ``(K,)`` (each < n)."""
        t = self.text
        dtype = t.transformer.get_cast_dtype()
        x = t.token_embedding(tokens[:, :n]).to(dtype) + t.positional_embedding[:n].to(dtype)
        x = t.ln_final(t.transformer(x, attn_mask=t.attn_mask[:n, :n]))
        x = x[torch.arange(x.shape[0], device=x.device), ends]
        if isinstance(t.text_projection, nn.Linear):
            return t.text_projection(x)
        return x if t.text_projection is None else x @ t.text_projection

    def _cached_text(self, sets: torch.Tensor) -> torch.Tensor:
        """Frozen features of prompt sets ``(S, C, 77)`` -> ``(S, C, E)``, one cache entry per set."""
        keys = [hashlib.sha1(s.detach().cpu().contiguous().numpy().tobytes()).hexdigest() for s in sets]
        missing = [i for i, k in enumerate(keys) if k not in self._text_cache]
        if missing:
            with torch.no_grad():
                new = self._encode_tokens(sets[missing].flatten(0, 1)).unflatten(0, (len(missing), sets.shape[1]))
        for j, i in enumerate(missing):
            self._text_cache[keys[i]] = new[j]
        for k in keys:
            self._text_cache.move_to_end(k)
        out = torch.stack([self._text_cache[k] for k in keys])
        while len(self._text_cache) > TEXT_CACHE_SETS:
            self._text_cache.popitem(last=False)
        return out

    def score(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The logits as released: ``exp(logit_scale) · ⟨video feature, unit text feature⟩``.
        Video features ``(B, E)`` (:meth:`encode_video`) with unit text features ``(C, E)`` ->
        ``(B, C)``; with prompt sets ``(A, C, E)`` -> ``(B, A, C)`` (:meth:`encode_text` with
        ``normalize=True``). In the features' dtype."""
        return self.text.logit_scale.exp() * torch.einsum("be,...ce->b...c", video, text)

    def class_probs(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Evaluation's class probabilities, float32 ``(B, C)``: :meth:`score` of video features
        ``(B, E)`` against unit prompt-set features ``(A, C, E)``, computed in float32 whatever
        dtype autocast gave the features, its softmax averaged over the A sets."""
        if text.dim() != 3:
            raise ValueError(f"expected prompt-set text features (A, C, E), got shape {tuple(text.shape)}")
        return average_class_probs(self.score(video.float(), text.float()))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """:meth:`score` of video ``(B, T, 3, H, W)`` against class tokens ``(C, 77)`` -> ``(B, C)``,
        or prompt sets ``(A, C, 77)`` -> ``(B, A, C)``; the video feature is the mean of the unit
        frame embeddings (:meth:`encode_video`)."""
        return self.score(self.encode_video(x), self.encode_text(tokens, normalize=True))

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
