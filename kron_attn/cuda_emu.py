"""``backend="cuda_emu"``: the CUDA kernels' own source, compiled for the host, run on CPU tensors
by the project's SIMT emulator (csrc/cuda_emu). For tests and debugging of the CUDA kernels
without a GPU: it checks their logic, fragment addressing, cp.async/barrier discipline and memory
bounds (docs/cuda_kernel.md says what it proves and what it cannot), and it is slow. Never chosen
by ``backend="auto"``.

The ops ``kron_attn::cuda_emu_fwd`` / ``cuda_emu_bwd`` have every backend's schema and the CUDA
ops' checks, dtypes (float32 computed in bfloat16) and errors; kron_attn/backends.py holds the
backend's record. This module loads the emulator and sets its options.
"""

from __future__ import annotations

import importlib

try:
    _emu = importlib.import_module("kron_attn._cuda_emu")  # registers the ops
except ImportError:
    _emu = None


def problem() -> str:
    """'' when this build has the emulator module, else what to do."""
    if _emu is not None:
        return ""
    return "this kron_attn build has no emulator module (kron_attn._cuda_emu); reinstall with: pip install ."


def available() -> bool:
    """Whether this build has the emulator module."""
    return _emu is not None


def set_schedule_seed(seed: int) -> None:
    """0 (the default): each CTA's threads run in index order between barriers and collectives;
    another seed shuffles that order at every scheduling round (other interleavings)."""
    if _emu is None:
        raise RuntimeError(problem())
    _emu.set_schedule_seed(seed)
