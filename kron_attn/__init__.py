"""kron_attn: exact Kronecker-mask attention for video transformers.

import kron_attn
out = kron_attn.attention(q, k, v, frames=8, layout="kmt")   # q, k, v: (B, H, T*L, D)
"""

from . import _extension

_extension.load()  # before anything touches the compiled ops: a clear error for a torch mismatch

from . import backends, layouts, masks, reference  # noqa: E402
from .api import attention, available_backends  # noqa: E402
from .layouts import Layout  # noqa: E402
from .module import KroneckerAttention, swap_attention  # noqa: E402

__all__ = [
    "attention",
    "available_backends",
    "backends",
    "KroneckerAttention",
    "Layout",
    "layouts",
    "masks",
    "reference",
    "swap_attention",
]
__version__ = "0.1.0"
