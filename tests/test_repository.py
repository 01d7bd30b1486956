"""The repository explains itself: its text refers only to what it contains.

Over every text file of the checkout (``git ls-files``: tracked files and new ones git does not
ignore; without git, a walk of the tree), these tests fail, naming ``file:line``, on

- references to documents or places outside the repository, and on the vocabulary of the way the
  work was organised rather than of the code (:data:`FORBIDDEN`): the design document is
  ``docs/design.md``, its sections are its headings;
- relative Markdown links (``[text](path#anchor)``) and ``path.md#anchor`` references whose file
  does not exist or whose anchor is not a heading of that file (GitHub's anchor rule);
- paths in backticks in Markdown files (``csrc/schedule.h``, ``kron_attn/api.py``) that do not
  exist.

Natural-language data is exempt: the label lists under ``claver/labels/`` and the class
descriptions of ``claver/prompts/data/*.json`` (their metadata before ``"classes"`` is checked).
"""

from __future__ import annotations

import functools
import itertools
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
TOP_LEVEL = ("csrc", "kron_attn", "claver", "tests", "benchmarks", "tools", "docs", "configs", "examples")

# What a walk of the tree leaves out when git is not there (what .gitignore ignores).
SKIP_DIRS = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".benchmarks"}
SKIP_DIRS |= {".hypothesis", "results", "cmake-build", "runs", ".whl"}
SKIP_SUFFIXES = (".so", ".pyc", ".egg-info")
SKIP_FILES = {"kron_attn/_build_info.py"}  # written by setup.py

_I = re.IGNORECASE
FORBIDDEN: list[tuple[str, re.Pattern]] = [
    ("a design document outside the repository", re.compile(r"\bDESIGN(\.md)?\s*§|\bDESIGN\.md\b")),
    ("a section sign (cite docs/design.md#section)", re.compile(r"§")),
    ("a document outside the repository", re.compile(r"\b(METHOD|HOPPER|STYLE)\.md\b")),
    ("a folder outside the repository", re.compile(r"\.\./shared\b|(?<![\w./-])shared/")),
    ("an issue reference", re.compile(r"\bissues?\s*#\s*\d+|\bissues?\s+\d+\b|\bissue\s+(acceptance|tracker)\b", _I)),
    ("an issue reference", re.compile(r"\b(the|these|those|open|closed|github|filed|our)\s+issues\b", _I)),
    ("a tracker or ticket", re.compile(r"\btrackers?\b|\btickets?\b", _I)),
    ("a work session", re.compile(r"(?<!\.)\bsessions?\b(?!\s*\()", _I)),
    ("the team", re.compile(r"\bthe\s+team\b", _I)),
    ("the workplace's tools", re.compile(r"\bdevice\s+(readme|tools?|calls?)\b", _I)),
    ("the workplace's budget", re.compile(r"\bbudget_left\b|\b(gpu|device|time)\s+budget\b", _I)),
    ("a lent machine", re.compile(r"\blent\b")),
    (
        "the workplace's transfers",
        re.compile(r"\bcarr(y|ies|ied)\b.{0,20}\.whl\b|\bwheels?\b.{0,40}\bcarr(y|ies|ied)\b|\bstage 2 carries\b", _I),
    ),
]

MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_REF = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w.-]+\.md)#([\w-]+)")
BACKTICKED = re.compile(r"`([^`\n]+)`")
PATH_TOKEN = re.compile("^(?:" + "|".join(TOP_LEVEL) + r")/[\w./{},*-]*$")


def _walk() -> list[str]:
    found = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(p in SKIP_DIRS or p.startswith("cmake-build") or p.endswith(SKIP_SUFFIXES) for p in rel.parts):
            continue
        if path.is_file() and rel.as_posix() not in SKIP_FILES:
            found.append(rel.as_posix())
    return sorted(found)


@functools.cache
def repository_files() -> tuple[str, ...]:
    """Paths relative to the root: tracked files and files git does not ignore, or a walk."""
    if (ROOT / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT,
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout
            return tuple(sorted({p for p in out.decode().split("\0") if p and (ROOT / p).is_file()}))
        except (OSError, subprocess.SubprocessError):
            pass
    return tuple(_walk())


@functools.cache
def text_of(rel: str) -> str | None:
    """The file's text, or None for a binary file."""
    data = (ROOT / rel).read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def text_files() -> list[tuple[str, str]]:
    return [(rel, text) for rel in repository_files() if (text := text_of(rel)) is not None]


def checked_lines(rel: str, text: str):
    """(line number, line) of the file that the vocabulary rules apply to."""
    if rel == THIS or rel.startswith("claver/labels/"):
        return
    lines = text.splitlines()
    if rel.startswith("claver/prompts/data/") and rel.endswith(".json"):
        lines = list(itertools.takewhile(lambda line: '"classes"' not in line, lines))
    yield from enumerate(lines, 1)


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: links and code reduced to their text, lowercase, punctuation
    other than '-' and '_' dropped, each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


@functools.cache
def anchors(rel: str) -> frozenset[str]:
    """Anchors of a Markdown file's headings (repeated headings get -1, -2...), outside code."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in (text_of(rel) or "").splitlines():
        if re.match(r"\s*(```|~~~)", line):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r" {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = github_anchor(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    return frozenset(found)


def _target_problem(base: Path, target: str, anchor: str | None) -> str:
    """'' when ``target`` (relative to ``base``; '' = the file itself) and ``anchor`` exist."""
    path = (base / target).resolve() if target else base
    try:
        rel = path.relative_to(ROOT).as_posix()
    except ValueError:
        return f"{target} lies outside the repository"
    if not path.exists():
        return f"{target} does not exist"
    if anchor and path.suffix == ".md" and anchor not in anchors(rel):
        return f"{target or rel}#{anchor}: no heading of {rel} has that anchor"
    return ""


def expand(pattern: str) -> list[str]:
    """Shell-style brace expansion of ``a{b,c}d``."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [x for alt in m.group(1).split(",") for x in expand(pattern[: m.start()] + alt + pattern[m.end() :])]


def path_exists(token: str) -> bool:
    for candidate in expand(token):
        if any(c in candidate for c in "*?"):
            if not any(ROOT.glob(candidate)):
                return False
        elif not (ROOT / candidate).exists():
            return False
    return True


def test_lists_the_repository():
    files = repository_files()
    assert "README.md" in files and THIS in files


def test_no_references_outside_the_repository():
    hits = []
    for rel, text in text_files():
        for number, line in checked_lines(rel, text):
            for what, pattern in FORBIDDEN:
                if m := pattern.search(line):
                    hits.append(f"{rel}:{number}: {what}: {m.group(0)!r} in {line.strip()[:140]!r}")
    assert not hits, "text that refers to what the repository does not hold:\n" + "\n".join(hits)


def markdown_lines():
    """(file, line number, line) of every Markdown file of the repository."""
    for rel, text in text_files():
        if rel.endswith(".md"):
            for number, line in enumerate(text.splitlines(), 1):
                yield rel, number, line


def test_markdown_links_resolve():
    hits = []
    fenced = False
    for rel, number, line in markdown_lines():
        fenced = fenced and number > 1  # a new file starts outside any code block
        if re.match(r"\s*(```|~~~)", line):
            fenced = not fenced
        if fenced:
            continue
        for m in MD_LINK.finditer(line):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:...
                continue
            path, _, anchor = target.partition("#")
            problem = _target_problem((ROOT / rel).parent if path else ROOT / rel, path, anchor or None)
            if problem:
                hits.append(f"{rel}:{number}: link {target}: {problem}")
    assert not hits, "Markdown links to nothing:\n" + "\n".join(hits)


def test_document_references_resolve():
    """``file.md#anchor`` anywhere in the text (docstrings, comments, docs), relative to the
    citing file or to the root."""
    hits = []
    for rel, text in text_files():
        if rel == THIS:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for m in MD_REF.finditer(line):
                path, anchor = m.group(1), m.group(2)
                problems = [_target_problem(base, path, anchor) for base in ((ROOT / rel).parent, ROOT)]
                if all(problems):
                    found = [p for p in problems if not p.endswith("does not exist")]
                    hits.append(f"{rel}:{number}: {path}#{anchor}: {(found or problems)[0]}")
    assert not hits, "references to missing documents or sections:\n" + "\n".join(hits)


def test_backticked_paths_exist():
    hits = []
    for rel, number, line in markdown_lines():
        for m in BACKTICKED.finditer(line):
            token = re.split(r"[#:]", m.group(1).strip())[0].rstrip(".,;")
            if PATH_TOKEN.match(token) and not path_exists(token):
                hits.append(f"{rel}:{number}: `{m.group(1)}` does not exist")
    assert not hits, "paths in backticks that the repository does not hold:\n" + "\n".join(hits)
