"""``backend="cuda_emu"``: the CUDA kernels' own source, compiled for the host, run on CPU tensors
by the project's SIMT emulator (csrc/cuda_emu). For tests and debugging of the CUDA kernels
without a GPU: it checks their logic, fragment addressing, cp.async/barrier discipline and memory
bounds (docs/cuda_kernel.md says what it proves and what it cannot), and it is slow. Never chosen
by ``backend="auto"``.

The ops ``kron_attn::cuda_emu_fwd`` / ``cuda_emu_bwd`` have the schemas of ``attention_fwd`` /
``attention_bwd`` and the CUDA ops' checks, dtypes (float32 computed in bfloat16) and errors.
"""

from __future__ import annotations

import importlib

import torch

from . import ops

try:
    _emu = importlib.import_module("kron_attn._cuda_emu")  # registers the ops
except ImportError:
    _emu = None


def available() -> bool:
    """Whether this build has the emulator module."""
    return _emu is not None


def _module():
    if _emu is None:
        raise RuntimeError(
            "backend='cuda_emu': this kron_attn build has no emulator module (kron_attn._cuda_emu); "
            "reinstall with: pip install --no-build-isolation ."
        )
    return _emu


def set_schedule_seed(seed: int) -> None:
    """0 (the default): each CTA's threads run in index order between barriers and collectives;
    another seed shuffles that order at every scheduling round (other interleavings)."""
    _module().set_schedule_seed(seed)


if _emu is not None:

    @torch.library.register_fake("kron_attn::cuda_emu_fwd")
    def _fwd_fake(q, k, v, layout, scale):
        return torch.empty_like(q, memory_format=torch.contiguous_format), q.new_empty(q.shape[:3], dtype=torch.float32)

    @torch.library.register_fake("kron_attn::cuda_emu_bwd")
    def _bwd_fake(dout, q, k, v, out, lse, layout, scale, dlse=None):
        return tuple(torch.empty_like(x, memory_format=torch.contiguous_format) for x in (q, k, v))

    ops.register_attention_autograd("kron_attn::cuda_emu_fwd", torch.ops.kron_attn.cuda_emu_bwd.default)


def attention_fwd(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Emulated CUDA forward: ``(out (B, H, N, D) in q's dtype, lse (B, H, N) float32)``."""
    _module()
    return torch.ops.kron_attn.cuda_emu_fwd.default(q, k, v, layout, scale)


def attention_bwd(dout, q, k, v, out, lse, layout, scale, dlse=None):
    """Emulated CUDA backward: ``(dq, dk, dv)``, each ``(B, H, N, D)`` in q's dtype."""
    _module()
    return torch.ops.kron_attn.cuda_emu_bwd.default(dout, q, k, v, out, lse, layout, scale, dlse)
