"""Generating interpretive descriptions for a label set, resumably.

Each (class, family, variant) is one request. Finished requests are appended to a cache
(``OUT.cache.jsonl``) as they complete, so an interrupted run resumes without asking again.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from .backends import PromptBackendError
from .fitting import dedupe, fit
from .format import FAMILIES, PromptClass, PromptFile
from .instructions import messages

Job = tuple[str, str, int]  # (class name, family, variant)


class Cache:
    """Append-only JSON-lines record of finished requests; safe to share between threads."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.answers: dict[Job, str] = {}
        lines = path.read_text().splitlines() if path.is_file() else []
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                self.answers[(rec["class"], rec["family"], int(rec["variant"]))] = rec["text"]
            except (ValueError, KeyError, TypeError):
                # Only the last line can be cut by an interruption; that request is made again.
                if line_no != len(lines):
                    raise ValueError(f"{path}:{line_no}: corrupt cache line") from None

    def add(self, job: Job, text: str) -> None:
        rec = {"class": job[0], "family": job[1], "variant": job[2], "text": text}
        with self._lock:
            self.answers[job] = text
            with open(self.path, "a") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()


def generate(
    class_names: Sequence[str],
    backend: Callable[[list[dict[str, str]]], str],
    out: str | Path,
    *,
    dataset: str = "",
    families: Sequence[str] = FAMILIES,
    variants: int = 2,
    concurrency: int = 4,
    count_tokens: Callable[[str], int],
    generator_info: dict | None = None,
    progress: bool = True,
) -> PromptFile:
    """Ask ``backend`` for ``variants`` descriptions per (class, family), fit each to CLIP's
    context, de-duplicate, and write ``out``. Raises PromptBackendError on a failure that retries
    cannot fix; everything finished before it stays in the cache."""
    out = Path(out)
    for fam in families:
        messages(fam, "check")  # unknown family -> error before any request
    cache = Cache(out.with_name(out.name + ".cache.jsonl"))
    jobs = [(c, f, v) for c in class_names for f in families for v in range(variants)]
    todo = [j for j in jobs if j not in cache.answers]

    stop = threading.Event()

    def run(job: Job) -> None:
        if not stop.is_set():
            cache.add(job, backend(messages(job[1], job[0])))

    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), disable=not progress, desc="descriptions")
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(run, j) for j in todo]
        for fut in futures:
            fut.add_done_callback(lambda _: bar.update(1))
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            stop.set()
            for f in futures:
                f.cancel()
    bar.close()
    if failed:
        err = failed[0].exception()
        finished = len(cache.answers)
        raise PromptBackendError(f"{err} ({finished} of {len(jobs)} descriptions are cached; rerun to resume)")

    classes = []
    for i, name in enumerate(class_names):
        desc = {}
        for fam in families:
            texts = [fit(cache.answers[(name, fam, v)], count_tokens) for v in range(variants)]
            desc[fam] = dedupe(texts)
        classes.append(PromptClass(i, name, desc))
    info = dict(generator_info or {})
    info.setdefault("date", datetime.date.today().isoformat())
    info["settings"] = {**info.get("settings", {}), "variants": variants}
    result = PromptFile(dataset, list(families), info, classes)
    result.save(out)
    return result
