"""Kronecker-mask attention in Hugging Face transformers models, through their ``AttentionInterface``.

    from kron_attn.integrations import transformers as kron_hf
    kron_hf.register()                                   # registers the name "kron_attn"
    model = VideoMAEModel(config, attn_implementation="kron_attn")
    # or: model.set_attn_implementation("kron_attn")

Every attention layer of a model that dispatches through the interface then runs
``kron_attn.attention`` over its tokens: ``frames`` frames of L tokens each after
``prefix_tokens`` global ones. Left as None, both come from the model's config where its token
order is known (VideoMAE: ``num_frames // tubelet_size`` frames, no prefix; ViViT:
``num_frames // tubelet_size[0]`` frames after one class token). transformers stays optional: it is
imported only when ``register`` is called.
"""

from __future__ import annotations

from ..api import attention
from ..layouts import LayoutLike


def frames_and_prefix(config, frames: int | None = None, prefix_tokens: int | None = None) -> tuple[int, int]:
    """The clip's frame count and prefix tokens: those given, else what ``config`` implies."""
    kind = getattr(config, "model_type", type(config).__name__)
    known = {
        "videomae": lambda c: (c.num_frames // c.tubelet_size, 0),
        "vivit": lambda c: (c.num_frames // c.tubelet_size[0], 1),
    }
    implied = known[kind](config) if kind in known else (None, None)
    frames = frames if frames is not None else implied[0]
    prefix_tokens = prefix_tokens if prefix_tokens is not None else implied[1]
    if frames is None or prefix_tokens is None:
        raise ValueError(
            f"kron_attn cannot tell how the tokens of a {kind!r} model split into frames; "
            "register(..., frames=T, prefix_tokens=P) with the frame count and the tokens before the first frame"
        )
    return frames, prefix_tokens


def register(
    name: str = "kron_attn", frames: int | None = None, layout: LayoutLike = "kmt", prefix_tokens: int | None = None
) -> str:
    """Registers Kronecker-mask attention with transformers' ``AttentionInterface`` as ``name``
    (use it with ``attn_implementation=name``); returns ``name``."""
    from transformers import AttentionInterface

    def kron_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, is_causal=False, **_):
        """transformers' attention call: q, k, v ``(B, H, N, D)`` -> ``((B, N, H, D), None)``."""
        if attention_mask is not None or is_causal:
            raise ValueError(f"attn_implementation={name!r} takes no attention mask: the frame layout is the mask")
        if dropout:
            raise ValueError(f"attn_implementation={name!r} has no attention dropout; set the dropout to 0")
        t, p = frames_and_prefix(module.config, frames, prefix_tokens)
        out = attention(query, key, value, frames=t, layout=layout, scale=scaling, prefix_tokens=p)
        return out.transpose(1, 2).contiguous(), None

    AttentionInterface.register(name, kron_attention)
    return name
