"""Counts and problems of prompt files: what ``python -m claver.prompts stats`` prints."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from .fitting import CONTEXT
from .format import PromptFile


def problems(pf: PromptFile, class_names: list[str] | None, count_tokens: Callable[[str], int], min_variants: int):
    """Everything wrong with a prompt file, as sentences."""
    out = []
    names = [c.name for c in pf.classes]
    if class_names is not None and names != class_names:
        missing = [n for n in class_names if n not in names]
        extra = [n for n in names if n not in class_names]
        out.append(f"class list differs from the labels (missing {missing[:5]}, unexpected {extra[:5]})")
    owner: dict[str, str] = {}
    for c in pf.classes:
        for fam in pf.families:
            texts = c.descriptions.get(fam, [])
            if len(texts) < min_variants:
                out.append(f"{c.name!r}/{fam}: {len(texts)} descriptions, fewer than {min_variants}")
            for t in texts:
                if not t.strip():
                    out.append(f"{c.name!r}/{fam}: empty description")
                elif count_tokens(t) > CONTEXT - 2:
                    out.append(f"{c.name!r}/{fam}: longer than CLIP's context: {t[:50]!r}...")
                key = re.sub(r"[^a-z0-9]+", " ", t.lower()).strip()
                if key in owner:
                    out.append(f"{c.name!r}/{fam}: repeats a description of {owner[key]!r}: {t[:50]!r}")
                owner.setdefault(key, c.name)
        unknown = set(c.descriptions) - set(pf.families)
        if unknown:
            out.append(f"{c.name!r}: families not declared in the file: {sorted(unknown)}")
    return out


def family_counts(pf: PromptFile) -> dict[str, tuple[int, int, int]]:
    """family -> (descriptions, fewest per class, most per class)."""
    result = {}
    for fam in pf.families:
        per = Counter({c.name: len(c.descriptions.get(fam, [])) for c in pf.classes})
        result[fam] = (sum(per.values()), min(per.values(), default=0), max(per.values(), default=0))
    return result
