"""The compiler flags of the extensions, in one place: setup.py builds with them, and the static
profile compiles FlashAttention-2's forward with the same nvcc flags (benchmarks/static_profile),
so that both are compiled the same way."""

from __future__ import annotations


def optimisation(debug: bool = False) -> list[str]:
    return ["-O0", "-g"] if debug else ["-O3"]


def nvcc_flags(debug: bool = False) -> list[str]:
    """-lineinfo keeps source lines in the SASS (the static profile reads them); -Xptxas=-v prints
    registers, shared memory and spills per kernel; torch adds -std=c++20 itself."""
    return optimisation(debug) + ["--expt-relaxed-constexpr", "-lineinfo", "--use_fast_math", "-Xptxas=-v"]
