"""A short tour of kron_attn: the op, the layouts, and the drop-in attention module."""

import time

import torch
from torch import nn

import kron_attn

T, L, heads, dim = 8, 50, 12, 768  # 8 frames of ViT-B/32 tokens
print("available backends:", kron_attn.available_backends())
print("kmct layout for 4 frames ('#' attends, '.' only each token's self term):")
print(kron_attn.layouts.render("kmct", 4))
print(f"kmt skips {kron_attn.layouts.sparsity('kmt', T, L):.1%} of the (query, key) pairs at T={T}, L={L}")

# The op: q, k, v of shape (B, H, T*L, D), frame-major tokens.
q, k, v = (torch.randn(2, heads, T * L, dim // heads, requires_grad=True) for _ in range(3))
out = kron_attn.attention(q, k, v, frames=T, layout="kmt")
out.sum().backward()
exact = kron_attn.reference.attention(q.double(), k.double(), v.double(), T, "kmt")
print(f"op: out {tuple(out.shape)}, max |ours - float64 reference| = {(out.double() - exact).abs().max():.2e}")

# The module: same parameters as nn.MultiheadAttention, so CLIP weights load as they are.
block = kron_attn.KroneckerAttention(dim, heads, frames=T, layout="kmt")
mha = nn.MultiheadAttention(dim, heads, batch_first=True)
mha.load_state_dict(block.state_dict())
x = torch.randn(2, T * L, dim)
mask = kron_attn.masks.additive_mask(T, L, "kmt")  # the paper's (N, N) -inf mask
with torch.no_grad():
    t0 = time.perf_counter()
    ours = block(x)
    t1 = time.perf_counter()
    theirs = mha(x, x, x, attn_mask=mask, need_weights=False)[0]
    t2 = time.perf_counter()
print(
    f"module: max |KroneckerAttention - MultiheadAttention+mask| = {(ours - theirs).abs().max():.2e}"
    f" ({(t1 - t0) * 1e3:.1f} ms vs {(t2 - t1) * 1e3:.1f} ms, first call)"
)
