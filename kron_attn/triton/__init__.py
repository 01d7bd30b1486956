"""The Triton backend of kron_attn: ops ``kron_attn::triton_fwd`` / ``triton_bwd`` with autograd.

Runs on CUDA tensors, and on CPU tensors when ``TRITON_INTERPRET=1`` is set before Triton is
imported (slow: for tests). Triton is optional; :func:`available` says whether this backend can run.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch

DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def available(device: torch.device | str | None = None) -> bool:
    """Whether the Triton backend can run on ``device`` (default: anywhere it can)."""
    if not installed():
        return False
    kind = torch.device(device).type if device is not None else None
    if kind == "cpu":
        return interpreting()
    if kind == "cuda" or kind is None:
        return interpreting() or torch.cuda.is_available()
    return False


def unavailable_reason(device: torch.device) -> str:
    if not installed():
        return "the triton backend needs the 'triton' package: pip install triton"
    if device.type == "cpu":
        return "the triton backend runs CPU tensors only under TRITON_INTERPRET=1 (set before importing triton)"
    return f"the triton backend cannot run on {device}"


@functools.cache
def _ops():
    from . import ops  # imports triton: only when the backend is used

    return ops


def attention_fwd(q, k, v, layout, scale):
    """``(out, lse)`` through the registered Triton op (differentiable in both)."""
    if q.dtype not in DTYPES:
        raise TypeError(f"the triton backend supports {', '.join(map(str, DTYPES))}, got {q.dtype}")
    return _ops().triton_fwd(q, k, v, layout, scale)
