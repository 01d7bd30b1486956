"""Interpretive prompts: LLM-written descriptions of each action class, in four families
(decomposition, body parts, synonyms, scene), and the generator that writes them.

    descriptions = claver.prompts.load("hmdb51").by_name()     # class name -> descriptions
    python -m claver.prompts generate --labels LABELS.csv --out PROMPTS.json --base-url URL --model NAME
    python -m claver.prompts stats
"""

from __future__ import annotations

from pathlib import Path

from .format import FAMILIES, FORMAT, PromptClass, PromptFile, read

DATA = Path(__file__).parent / "data"


def shipped() -> list[str]:
    """Datasets with prompt files shipped in the package."""
    return sorted(p.stem for p in DATA.glob("*.json"))


def load(name_or_path: str | Path) -> PromptFile:
    """A shipped prompt set by dataset name (``"hmdb51"``, ``"ucf101"``) or a prompt file path."""
    path = DATA / f"{name_or_path}.json" if str(name_or_path) in shipped() else Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no prompt file {name_or_path!r}: shipped ones are {shipped()}, or give a path")
    return read(path)


__all__ = ["FAMILIES", "FORMAT", "PromptClass", "PromptFile", "load", "read", "shipped"]
