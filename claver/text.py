"""The text branch's inputs: prompt sets built from templates and interpretive descriptions.

For C classes there are A prompt sets, each naming every class once: one set per template
("a video of a person {}.") and one per interpretive description (the d-th description of
every class). Tokenised they form a ``(A, C, 77)`` tensor. Training samples K of the A sets per
step and averages the cross-entropy of the ``(B, K, C)`` logits; evaluation averages the class
softmax over all A sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from . import prompts as prompt_files

TEMPLATES = (
    "a video of a person {}.",
    "a photo of a person {}.",
    "a person is {}.",
    "a video of {}.",
    "a clip of a human {}.",
    "human action of {}.",
    "{}, an action.",
    "a video of a person using {}.",
)


def build_prompt_sets(
    class_names: Sequence[str],
    descriptions: Mapping[str, Sequence[str]] | None = None,
    templates: Sequence[str] = TEMPLATES,
) -> list[list[str]]:
    """A prompt sets of C strings each: one per template, then one per description index.

    ``descriptions`` maps a class name to its interpretive descriptions (all families in one
    list); a class with fewer than the most has its own reused in order. Classes without any
    description keep their plain name in the description sets.
    """
    if not class_names:
        raise ValueError("class_names is empty")
    for t in templates:
        if "{}" not in t:
            raise ValueError(f"template {t!r} has no '{{}}' for the class name")
    sets = [[t.format(c) for c in class_names] for t in templates]
    descriptions = descriptions or {}
    unknown = set(descriptions) - set(class_names)
    if unknown:
        raise ValueError(f"descriptions given for unknown classes: {sorted(unknown)[:5]}")
    depth = max((len(d) for d in descriptions.values()), default=0)
    for i in range(depth):
        row = []
        for c in class_names:
            own = list(descriptions.get(c, ()))
            row.append(own[i % len(own)] if own else c)
        sets.append(row)
    return sets


def tokenize_prompt_sets(sets: Sequence[Sequence[str]], tokenizer: Callable) -> torch.Tensor:
    """``(A, C, context_length)`` int64 tokens from :func:`build_prompt_sets`' output."""
    if len({len(s) for s in sets}) != 1:
        raise ValueError("every prompt set must name the same classes")
    return torch.stack([tokenizer(list(s)) for s in sets])


def prompt_tokens(class_names: Sequence[str], prompts: str | Path | None, tokenizer: Callable) -> torch.Tensor:
    """The ``(A, C, context_length)`` int64 prompt sets of a label list: the templates, then the
    interpretive descriptions of ``prompts`` (a prompt file or a shipped name, see
    :func:`claver.prompts.load`; None: templates only) for the classes it describes.

    The file may describe classes the list lacks (a zero-shot split of a benchmark uses the
    benchmark's file) and may leave some of the list undescribed (they keep their plain name in
    the description sets); a file that describes none of them is a ValueError."""
    descriptions = None
    if prompts:
        wanted = set(class_names)
        descriptions = {k: v for k, v in prompt_files.load(prompts).by_name().items() if v and k in wanted}
        if not descriptions:
            shown = ", ".join(repr(c) for c in class_names[:5]) + (", ..." if len(class_names) > 5 else "")
            raise ValueError(f"prompt file {str(prompts)!r} describes none of the classes {shown}")
    return tokenize_prompt_sets(build_prompt_sets(class_names, descriptions), tokenizer)


def sample_prompt_sets(tokens: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """K of the A prompt sets, drawn without replacement: ``(K, C, L)``."""
    a = tokens.shape[0]
    if not 1 <= k <= a:
        raise ValueError(f"cannot sample k = {k} of {a} prompt sets")
    return tokens[torch.randperm(a, generator=generator)[:k].to(tokens.device)]


def prompt_set_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over prompt sets. ``logits (B, K, C)``; ``target`` class ids ``(B,)``
    or soft targets ``(B, C)`` (mixup, label smoothing)."""
    b, k, c = logits.shape
    flat = logits.reshape(b * k, c)
    if target.dim() == 1:
        return F.cross_entropy(flat, target.repeat_interleave(k))
    return F.cross_entropy(flat, target.repeat_interleave(k, dim=0))


def average_class_probs(logits: torch.Tensor) -> torch.Tensor:
    """Evaluation: ``(B, A, C)`` logits -> class probabilities averaged over the A sets, ``(B, C)``."""
    return logits.softmax(dim=-1).mean(dim=1)
