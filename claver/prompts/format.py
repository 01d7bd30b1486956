"""The prompt file format, version 1.

    {
      "format": "claver-prompts/1",
      "dataset": "hmdb51",
      "families": ["decomposition", "body_parts", "synonyms", "scene"],
      "generator": {"model": "...", "backend": "...", "settings": {...}, "date": "YYYY-MM-DD"},
      "classes": [
        {"id": 0, "name": "brush hair",
         "descriptions": {"decomposition": ["...", "..."], "body_parts": [...], ...}},
        ...
      ]
    }

Every description fits CLIP's 77-token context. Classes appear in id order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "claver-prompts/1"
FAMILIES = ("decomposition", "body_parts", "synonyms", "scene")


@dataclass
class PromptClass:
    id: int
    name: str
    descriptions: dict[str, list[str]] = field(default_factory=dict)

    def all_descriptions(self) -> list[str]:
        """Every description of the class, family by family."""
        return [d for fam in self.descriptions.values() for d in fam]


@dataclass
class PromptFile:
    dataset: str
    families: list[str]
    generator: dict
    classes: list[PromptClass]

    def by_name(self) -> dict[str, list[str]]:
        """class name -> all its descriptions (what ``claver.text.build_prompt_sets`` takes)."""
        return {c.name: c.all_descriptions() for c in self.classes}

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "dataset": self.dataset,
            "families": list(self.families),
            "generator": self.generator,
            "classes": [{"id": c.id, "name": c.name, "descriptions": c.descriptions} for c in self.classes],
        }
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)


def read(path: str | Path) -> PromptFile:
    """Parse and check the structure of a prompt file; errors name the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format is {data.get('format')!r}, expected {FORMAT!r}")
    families = data.get("families")
    if not isinstance(families, list) or not families:
        raise ValueError(f"{path}: 'families' must be a non-empty list")
    classes = []
    for i, c in enumerate(data.get("classes", [])):
        if c.get("id") != i or not isinstance(c.get("name"), str):
            raise ValueError(f"{path}: class #{i} must have id {i} and a name")
        desc = c.get("descriptions", {})
        if not isinstance(desc, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in desc.values()
        ):
            raise ValueError(f"{path}: class {c['name']!r}: descriptions must map families to lists of strings")
        classes.append(PromptClass(i, c["name"], {k: list(v) for k, v in desc.items()}))
    return PromptFile(str(data.get("dataset", "")), list(families), dict(data.get("generator", {})), classes)
