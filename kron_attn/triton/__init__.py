"""The Triton backend of kron_attn: kernels for the ops ``kron_attn::triton_fwd`` / ``triton_bwd``
(kron_attn/backends.py holds its record).

Runs on CUDA tensors, and on CPU tensors when ``TRITON_INTERPRET=1`` is set before Triton is
imported (slow: for tests). Triton is optional and imported only when the backend first runs.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os

ON_CPU = "CPU tensors run under TRITON_INTERPRET=1, set before triton is imported"


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def installed() -> bool:
    return importlib.util.find_spec("triton") is not None


@functools.cache
def load_ops():
    """Imports triton and registers the kernels of the ops (kron_attn/triton/ops.py)."""
    return importlib.import_module(".ops", __name__)
