"""CLAVER: Contrastive Language-Action Video Learner.

import claver
model, train_tf, eval_tf = claver.create_model_and_transforms("ViT-B-16", pretrained="openai", frames=8)
video_emb = model.encode_video(x)          # x: (B, T, 3, H, W) -> (B, E): mean of unit frame features
text_emb = model.encode_text(tokens)       # CLIP tokens -> (K, E)
logits = model(x, tokens)                  # as released: exp(logit_scale) <video_emb, unit text>
"""

from . import labels, prompts, text
from .config import ClaverConfig
from .factory import (
    create_model,
    create_model_and_transforms,
    get_tokenizer,
    list_archs,
    load_checkpoint,
    load_image_weights,
    save_checkpoint,
    video_transforms,
)
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
    "create_model_and_transforms",
    "get_tokenizer",
    "list_archs",
    "load_checkpoint",
    "load_image_weights",
    "save_checkpoint",
    "video_transforms",
]
