"""Counts and problems of prompt files: what ``python -m claver.prompts stats`` prints."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import numpy as np

from .fitting import CONTEXT
from .format import PromptFile

# "unlike X" puts X's words in the prompt: the text encoder moves toward X, not away from it.
CONTRAST = re.compile(r"\b(unlike|not to be confused with|distinct from|as opposed to|different from)\b", re.I)


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
                if CONTRAST.search(t):
                    out.append(f"{c.name!r}/{fam}: contrasts with another action (CLIP reads no negation): {t[:50]!r}")
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


def retrieval_accuracy(pf: PromptFile) -> float:
    """How well the descriptions alone tell the classes apart: each description, with the words of
    its class name removed, as a TF-IDF vector (raw counts, idf log(N / df)), is given to the class
    whose centroid of the other descriptions is nearest in cosine; the fraction that land home.
    Template-like or name-paraphrasing descriptions score low; 1 / classes is chance."""
    docs, labels = [], []
    for i, c in enumerate(pf.classes):
        name_words = set(re.findall(r"[a-z]+", c.name.lower()))
        for text in c.all_descriptions():
            docs.append([w for w in re.findall(r"[a-z]+", text.lower()) if w not in name_words])
            labels.append(i)
    vocab = {w: j for j, w in enumerate(sorted({w for d in docs for w in d}))}
    x = np.zeros((len(docs), len(vocab)))
    for i, d in enumerate(docs):
        for w in d:
            x[i, vocab[w]] += 1
    x *= np.log(len(docs) / np.maximum((x > 0).sum(0), 1))
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    y = np.asarray(labels)
    sums = np.zeros((len(pf.classes), x.shape[1]))
    np.add.at(sums, y, x)
    # Leave-one-out without a loop: cosine ignores a centroid's 1 / count, and taking x_i out of its
    # own class's sum S changes x_i . S by -|x_i|^2 and |S|^2 by |x_i|^2 - 2 x_i . S.
    dots = x @ sums.T
    norms2 = np.broadcast_to((sums * sums).sum(1), dots.shape).copy()
    rows = np.arange(len(docs))
    own, self2 = dots[rows, y], (x * x).sum(1)
    dots[rows, y] = own - self2
    norms2[rows, y] = norms2[rows, y] - 2 * own + self2
    cosine = dots / (np.sqrt(np.maximum(norms2, 0)) + 1e-12)
    return float((cosine.argmax(1) == y).mean())
