"""Tiny training runs on the generated motion set (conftest.py's ``motion`` fixture), shared by the
training tests: the command-line options that point a run at it."""

from pathlib import Path


def opts(motion: Path, out: Path, *extra: str) -> list[str]:
    """``--opts`` values for a run of the demo recipe on ``motion`` into ``out`` (2 epochs of
    batches of 4, no workers); ``extra`` key/value pairs come last and so override these."""
    return [
        "data.root", str(motion), "data.train", str(motion / "train.txt"), "data.val", str(motion / "val.txt"),
        "data.labels", str(motion / "labels.csv"), "data.prompts", str(motion / "prompts.json"),
        "data.batch_size", "4", "data.workers", "0", "optim.epochs", "2", "optim.effective_batch", "8",
        "run.out", str(out), *extra,
    ]  # fmt: skip
