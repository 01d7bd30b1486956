"""Fitting a description into CLIP's context: cut at a sentence or phrase boundary, never mid-word."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

CONTEXT = 77  # CLIP's context, start and end tokens included


def clip_token_counter() -> Callable[[str], int]:
    """Number of BPE tokens CLIP's tokenizer gives a text (without start/end tokens)."""
    from open_clip.tokenizer import SimpleTokenizer

    tok = SimpleTokenizer()
    return lambda text: len(tok.encode(text))


def clean(text: str) -> str:
    """One line, single spaces, no surrounding quotes or list markers."""
    text = " ".join(text.split())
    text = re.sub(r"^(?:[-*•]|\d+[.)])\s+", "", text)
    return text.strip().strip("\"'“”").strip()


def fit(text: str, count: Callable[[str], int], context: int = CONTEXT) -> str:
    """The longest prefix of ``text`` that fits ``context`` tokens, ending at a sentence end if one
    fits, else at a phrase boundary (, ; : or a dash), else at a word boundary."""
    budget = context - 2
    text = clean(text)
    if count(text) <= budget:
        return text
    for pattern in (r"(?<=[.!?])\s", r"(?<=[,;:])\s|\s[-–—]\s", r"\s"):
        cuts = [m.start() for m in re.finditer(pattern, text)]
        fitting = [c for c in cuts if count(text[:c]) <= budget]
        if fitting:
            piece = text[: max(fitting)].rstrip(" ,;:-–—")
            return piece if piece.endswith((".", "!", "?")) else piece + "."
    return ""  # a single word longer than the context: nothing sensible to keep


def dedupe(texts: Iterable[str]) -> list[str]:
    """Drop empty texts and repeats (ignoring case, spacing and punctuation); keeps order."""
    seen, out = set(), []
    for t in texts:
        key = re.sub(r"[^a-z0-9]+", " ", t.lower()).strip()
        if key and key not in seen:
            seen.add(key)
            out.append(t)
    return out
