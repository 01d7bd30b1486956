"""kron_attn: exact Kronecker-mask attention for video transformers.

import kron_attn
out = kron_attn.attention(q, k, v, frames=8, layout="kmt")   # q, k, v: (B, H, T*L, D)
"""

from . import layouts, masks, reference
from .api import attention, available_backends
from .module import KroneckerAttention

__all__ = ["attention", "available_backends", "KroneckerAttention", "layouts", "masks", "reference"]
__version__ = "0.1.0"
