"""The video backends as test parameters: each one that can decode here, the others skipped with
the reason, and a failure instead of a skip for those ``CLAVER_REQUIRE_BACKENDS`` names (CI names
them all, so that a missing FFmpeg cannot pass unseen)."""

import os

import pytest

from claver.data import video

REQUIRED = set(filter(None, os.environ.get("CLAVER_REQUIRE_BACKENDS", "").split(",")))


def backend_param(name: str):
    problem = video.unavailable(name)
    if problem and name in REQUIRED:
        raise RuntimeError(f"CLAVER_REQUIRE_BACKENDS names {name}, but it {problem}")
    return pytest.param(name, marks=pytest.mark.skip(f"{name} {problem}") if problem else ())


BACKENDS = [backend_param(name) for name in video.BACKENDS]  # pyav, torchcodec, decord
USABLE = [name for name in video.BACKENDS if video.unavailable(name) is None]
