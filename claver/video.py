"""The video branch: CLIP's image encoder on every frame, then Kronecker temporal blocks.

frames (B, T, 3, H, W) -> CLIP ViT per frame, all layers -> tokens (B, T, L, W)
  + temporal embedding (one learned vector per frame, added to every token)
  -> temporal transformer over all T*L tokens (kron_attn, "kmt" or "kmct")
  -> ln_post on each frame's class token -> CLIP projection -> frame embeddings (B, T, E)
  -> each L2-normalised, then their mean -> (B, E), not renormalised (as released)
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

import kron_attn


def check_layout(layout: str, frames: int) -> None:
    """ValueError (kron_attn's, naming the problem) unless ``frames`` is an int >= 1 and
    ``layout`` a kron_attn preset."""
    kron_attn.Layout.of(layout, frames)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), CLIP's activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drops a residual branch for whole samples (dim 0) with probability p
    while training, scaling the kept ones by 1 / (1 - p). ``x`` ``(B, ...)``, any float dtype."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - p)
    # Not timm.layers.drop_path, which draws the same mask but divides the mask itself, in x's
    # dtype: under bf16 autocast its scale 1 / (1 - p) is rounded to bf16 (1.109375 for p = 0.1,
    # 1 for p < 0.004), shrinking every kept branch by up to 0.4%. The product divided here is
    # rounded once, without that bias.
    return x * keep / (1.0 - p)


class DropPath(nn.Module):
    """:func:`drop_path` as a module."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)


def release_drop_rates(p: float, clip_layers: int, temporal_layers: int) -> tuple[list[float], list[float]]:
    """The released code's stochastic depth: ``linspace(0, p, clip_layers)`` over the CLIP blocks,
    and the first ``temporal_layers`` of those rates (the last one repeated, should there be
    more temporal blocks than CLIP blocks) for the temporal blocks."""
    rates = torch.linspace(0, p, clip_layers, device="cpu").tolist()  # host numbers, also while building on meta
    return rates, [rates[min(i, clip_layers - 1)] for i in range(temporal_layers)]


def temporal_drop_rates(p: float, temporal_layers: int) -> list[float]:
    """Rates 0..p spread over the temporal blocks alone."""
    return [p * i / max(temporal_layers - 1, 1) for i in range(temporal_layers)]


def add_stochastic_depth(blocks: nn.ModuleList, rates: list[float]) -> None:
    """Stochastic depth on open_clip ``ResidualAttentionBlock`` s, whose residual branches end in
    ``ls_1`` / ``ls_2`` (LayerScale or identity): a forward hook on each applies drop_path, so no
    parameter name changes and CLIP's weights load as they are."""
    for block, p in zip(blocks, rates, strict=True):
        block.drop_path_rate = p
        if p > 0.0:
            for branch in (block.ls_1, block.ls_2):
                branch.register_forward_hook(lambda m, args, out, p=p: drop_path(out, p, m.training))


class TemporalBlock(nn.Module):
    """Pre-LayerNorm residual block over a clip's T*L tokens with Kronecker-mask attention.

    Submodule names follow CLIP's ``ResidualAttentionBlock`` (``ln_1``, ``attn``, ``ln_2``,
    ``mlp.c_fc``, ``mlp.c_proj``). Input and output ``(B, T*L, W)``.
    """

    def __init__(self, width: int, heads: int, frames: int, layout, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = kron_attn.KroneckerAttention(width, heads, frames=frames, layout=layout)
        self.ln_2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, hidden)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(hidden, width))]
            )
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.ln_1(x)))
        return x + self.drop_path(self.mlp(self.ln_2(x)))

    def init_weights(self, identity: bool) -> None:
        """Truncated-normal (std 0.02) weights, zero biases; with ``identity`` the output
        projections are zero, so the block starts as the identity map."""
        for lin in (self.mlp.c_fc, self.mlp.c_proj, self.attn.out_proj):
            nn.init.trunc_normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)
        nn.init.trunc_normal_(self.attn.in_proj_weight, std=0.02)
        nn.init.zeros_(self.attn.in_proj_bias)
        if identity:
            for lin in (self.mlp.c_proj, self.attn.out_proj):
                nn.init.zeros_(lin.weight)


class TemporalTransformer(nn.Module):
    """A temporal embedding and TemporalBlocks (one per entry of ``drop_rates``, its stochastic
    depth) over ``(B, T, L, W)`` tokens. ``init``: one of ``claver.config.TEMPORAL_INITS``."""

    def __init__(self, width: int, heads: int, frames: int, layout, drop_rates: list[float], init: str = "release"):
        super().__init__()
        self.frames = frames
        self.temporal_embedding = nn.Parameter(torch.zeros(frames, width))
        if init != "identity":  # identity: zero embedding too, so the tokens pass through unchanged
            nn.init.trunc_normal_(self.temporal_embedding, std=1.0 if init == "scratch" else 0.02)
        self.resblocks = nn.ModuleList(TemporalBlock(width, heads, frames, layout, drop_path=r) for r in drop_rates)
        if init != "release":  # release: the blocks keep PyTorch's default initialisation
            for blk in self.resblocks:
                blk.init_weights(identity=init == "identity")
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.resblocks:  # depth 0: the frame-mean baseline, no temporal modelling at all
            return x
        b, t, l, w = x.shape
        if t != self.frames:
            raise ValueError(f"the temporal transformer was built for {self.frames} frames, got {t}")
        x = (x + self.temporal_embedding[None, :, None, :].to(x.dtype)).reshape(b, t * l, w)
        for blk in self.resblocks:
            x = checkpoint(blk, x, use_reentrant=False) if self.grad_checkpointing and self.training else blk(x)
        return x.view(b, t, l, w)


class VideoEncoder(nn.Module):
    """open_clip ``VisionTransformer`` per frame + a Kronecker temporal transformer.

    ``visual`` is an open_clip VisionTransformer with class-token pooling (OpenAI-style CLIP
    ViTs). Input ``(B, T, 3, H, W)``; ``forward`` returns the video feature ``(B, E)``.
    """

    def __init__(self, visual: nn.Module, temporal: TemporalTransformer):
        super().__init__()
        if getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok":
            raise ValueError("CLAVER needs a CLIP ViT that pools its class token (no attentional pooling)")
        if getattr(visual, "final_ln_after_pool", False):
            raise ValueError("CLAVER needs a CLIP ViT with ln_post applied before pooling")
        self.visual = visual
        self.temporal = temporal

    @property
    def frames(self) -> int:
        return self.temporal.frames

    def frame_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` -> every frame through every CLIP layer: ``(B, T, L, W)``."""
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"expected video (B, T, 3, H, W), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        out = self.visual.forward_intermediates(
            x.flatten(0, 1), indices=1, intermediates_only=True, output_fmt="NLC", output_extra_tokens=True
        )
        # The last layer's output, which open_clip returns split into the class token and the patches.
        tokens = torch.cat([out["image_intermediates_prefix"][0], out["image_intermediates"][0]], dim=1)
        return tokens.view(b, t, tokens.shape[1], tokens.shape[2])

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, T, L, W)`` -> ln_post on each frame's class token, then CLIP's projection: ``(B, T, E)``."""
        pooled = self.visual.ln_post(tokens[:, :, 0])
        return pooled @ self.visual.proj if self.visual.proj is not None else pooled

    def encode_frames(self, x: torch.Tensor, temporal: bool = True) -> torch.Tensor:
        """Per-frame embeddings ``(B, T, E)``; ``temporal=False`` bypasses the temporal blocks
        (then each frame's embedding is exactly CLIP's image embedding)."""
        tokens = self.frame_tokens(x)
        return self.project(self.temporal(tokens) if temporal else tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The video feature the released code scores: the mean over frames of the L2-normalised
        frame embeddings, ``(B, E)``; its norm is at most 1 (it is not renormalised)."""
        return F.normalize(self.encode_frames(x), dim=-1).mean(dim=1)
