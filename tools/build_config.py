"""What the extensions are built from and with, in one place: the source lists, emulator flags,
default CUDA architectures and minimum torch of csrc/build.txt (which CMakeLists.txt reads too),
and the compiler flags. setup.py builds with them; the static profile compiles FlashAttention-2's
forward with the same nvcc flags (benchmarks/static_profile), so that both are compiled alike."""

from __future__ import annotations

import functools
import os

BUILD_LISTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "csrc", "build.txt")


@functools.cache
def _lists() -> dict[str, list[str]]:
    lists = {}
    with open(BUILD_LISTS) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, _, items = line.partition(":")
                lists[name.strip()] = items.split()
    return lists


def build_list(name: str) -> list[str]:
    """The items of list ``name`` of csrc/build.txt."""
    return list(_lists()[name])


def min_torch() -> tuple[int, int]:
    """The oldest torch (major, minor) the extensions build against."""
    major, minor = build_list("min_torch")[0].split(".")
    return int(major), int(minor)


def cuda_archs() -> str:
    """The default TORCH_CUDA_ARCH_LIST."""
    return ";".join(build_list("cuda_archs"))


def optimisation(debug: bool = False) -> list[str]:
    return ["-O0", "-g"] if debug else ["-O3"]


def nvcc_flags(debug: bool = False) -> list[str]:
    """-lineinfo keeps source lines in the SASS (the static profile reads them); -Xptxas=-v prints
    registers, shared memory and spills per kernel; torch adds -std=c++20 itself."""
    return optimisation(debug) + ["--expt-relaxed-constexpr", "-lineinfo", "--use_fast_math", "-Xptxas=-v"]
