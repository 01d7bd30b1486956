"""Any timm ViT as a video encoder with Kronecker temporal blocks (the "plug into any ViT" path).

vit = timm.create_model("vit_base_patch16_224", pretrained=True, num_classes=400)
model = claver.timm_video.VideoViT(vit, frames=8, layout="kmt")
logits = model(x)   # x: (B, T, 3, H, W) -> (B, num_classes)
"""

from __future__ import annotations

import torch
from torch import nn

from .video import TemporalTransformer, temporal_drop_rates


class VideoViT(nn.Module):
    """A timm ``VisionTransformer`` run on every frame, Kronecker temporal blocks over all tokens of
    the clip, then the ViT's own head on each frame, averaged over frames.

    Args:
        vit: a timm VisionTransformer (``forward_features`` / ``forward_head``).
        frames: T. layout: kron_attn layout (``"kmt"``, ``"kmct"``...).
        depth: temporal blocks; default ``len(vit.blocks) // 3``.
        drop_path: stochastic depth of the temporal blocks, 0..drop_path over them.
        identity_init: start the temporal blocks as the identity (zero output projections),
            else truncated-normal weights.
    """

    def __init__(
        self,
        vit: nn.Module,
        frames: int,
        layout="kmt",
        depth: int | None = None,
        drop_path: float = 0.0,
        identity_init: bool = False,
    ):
        super().__init__()
        for attr in ("forward_features", "forward_head", "blocks", "embed_dim"):
            if not hasattr(vit, attr):
                raise TypeError(f"expected a timm VisionTransformer; {type(vit).__name__} has no {attr!r}")
        self.vit = vit
        heads = vit.blocks[0].attn.num_heads
        depth = depth if depth is not None else max(len(vit.blocks) // 3, 1)
        rates, init = temporal_drop_rates(drop_path, depth), "identity" if identity_init else "trunc_normal"
        self.temporal = TemporalTransformer(vit.embed_dim, heads, frames, layout, rates, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"expected video (B, T, 3, H, W), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        tokens = self.vit.forward_features(x.flatten(0, 1))
        tokens = self.temporal(tokens.view(b, t, *tokens.shape[1:])).flatten(0, 1)
        return self.vit.forward_head(tokens).view(b, t, -1).mean(dim=1)
