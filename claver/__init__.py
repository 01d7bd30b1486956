"""CLAVER: Contrastive Language-Action Video Learner.

import claver
model = claver.create_model("ViT-B-16", pretrained="openai", frames=8, layout="kmt")
video_emb = model.encode_video(x)          # x: (B, T, 3, H, W) -> (B, E)
text_emb = model.encode_text(tokens)       # CLIP tokens -> (K, E)
logits = model(x, tokens)                  # scaled cosine similarities
"""

from . import labels, prompts, text
from .config import ClaverConfig
from .factory import create_model, list_archs, load_checkpoint, load_image_weights, save_checkpoint
from .model import CLAVER
from .video import TemporalBlock, TemporalTransformer, VideoEncoder

__all__ = [
    "labels",
    "prompts",
    "text",
    "CLAVER",
    "ClaverConfig",
    "TemporalBlock",
    "TemporalTransformer",
    "VideoEncoder",
    "create_model",
    "list_archs",
    "load_checkpoint",
    "load_image_weights",
    "save_checkpoint",
]
