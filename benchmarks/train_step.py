"""One CLAVER training step (forward, backward, AdamW) with Kronecker attention, against the same
model whose temporal attention is the original formulation: ``nn.MultiheadAttention`` with the
paper's dense additive ``-inf`` Kronecker mask.

    python -m benchmarks.train_step [--arch ViT-B-16] [--frames 8,32] [--size 224] [--batch 8]
        [--device cuda] [--amp bf16] [--steps 5] [--classes 400] [--prompt-sets 5] [--max-batch]

A step is what claver.train does per micro-batch: video and text towers forward (K prompt sets of
C classes), cross-entropy, backward, AdamW. Prints a markdown table: median step time over
``--steps`` timed steps (after 2 warm-up steps), peak device memory (CUDA only) and, with
``--max-batch``, the largest batch that fits (doubling, then bisecting between the last batch
that fit and the first that did not).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from claver import create_model
from claver.model import CLAVER
from claver.train_config import amp_dtype
from kron_attn import masks

IMPLS = ("kron", "original")


class MaskedMultiheadAttention(nn.MultiheadAttention):
    """CLAVER's released temporal attention: ``nn.MultiheadAttention`` over all T·L tokens with
    the dense additive Kronecker mask (N x N, built once per token count)."""

    def __init__(self, embed_dim: int, num_heads: int, frames: int, layout: torch.Tensor):
        super().__init__(embed_dim, num_heads, batch_first=True)
        self.frames, self.layout = frames, layout
        self._mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
        n = x.shape[1]
        if self._mask is None or self._mask.shape[0] != n or self._mask.dtype != dtype:
            self._mask = masks.additive_mask(self.frames, n // self.frames, self.layout, dtype=dtype, device=x.device)
        return super().forward(x, x, x, attn_mask=self._mask, need_weights=False)[0]


def with_original_attention(model: CLAVER) -> CLAVER:
    """Swap every temporal block's KroneckerAttention for MaskedMultiheadAttention with the same
    weights (the parameter names are nn.MultiheadAttention's)."""
    for blk in model.video.temporal.resblocks:
        ours = blk.attn
        theirs = MaskedMultiheadAttention(ours.embed_dim, ours.num_heads, ours.frames, ours.layout)
        theirs.load_state_dict(ours.state_dict())
        blk.attn = theirs.to(ours.in_proj_weight.device, ours.in_proj_weight.dtype)
    return model


def build(arch: str, frames: int, impl: str, layout: str = "kmt", device: str = "cpu", seed: int = 0) -> CLAVER:
    torch.manual_seed(seed)
    model = create_model(arch, None, frames=frames, layout=layout)
    if impl == "original":
        with_original_attention(model)
    elif impl != "kron":
        raise ValueError(f"unknown implementation {impl!r}; expected one of {IMPLS}")
    return model.to(device).train()


def inputs(model: CLAVER, batch: int, size: int, classes: int, prompt_sets: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(batch, model.frames, 3, size, size, generator=g).to(device)
    vocab = model.text.token_embedding.num_embeddings
    ctx = model.text.context_length
    tokens = torch.randint(1, vocab - 1, (prompt_sets, classes, ctx), generator=g)
    tokens[..., -1] = vocab - 1  # the end-of-text token (the highest id) that CLIP pools at
    labels = torch.randint(0, classes, (batch,), generator=g)
    return video, tokens.to(device), labels.to(device)


def make_step(model: CLAVER, amp: torch.dtype | None, device: str):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    dev = torch.device(device).type

    def step(video, tokens, labels) -> float:
        with torch.autocast(dev, dtype=amp, enabled=amp is not None):
            logits = model(video, tokens)  # (B, K, C)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.repeat_interleave(logits.shape[1]))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure(model: CLAVER, args, batch: int) -> dict:
    """Median step time (ms) and, on CUDA, peak allocated memory (GiB) at ``batch``."""
    video, tokens, labels = inputs(model, batch, args.size, args.classes, args.prompt_sets, args.device)
    step = make_step(model, amp_dtype(None if args.amp == "none" else args.amp), args.device)
    for _ in range(2):
        step(video, tokens, labels)
    cuda = torch.device(args.device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        _sync(args.device)
        t = time.perf_counter()
        step(video, tokens, labels)
        _sync(args.device)
        times.append((time.perf_counter() - t) * 1e3)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return {"ms": statistics.median(times), "peak_gib": peak}


def fits(model: CLAVER, args, batch: int) -> bool:
    try:
        video, tokens, labels = inputs(model, batch, args.size, args.classes, args.prompt_sets, args.device)
        make_step(model, amp_dtype(None if args.amp == "none" else args.amp), args.device)(video, tokens, labels)
        return True
    except torch.OutOfMemoryError:
        return False
    finally:
        model.zero_grad(set_to_none=True)
        if torch.device(args.device).type == "cuda":
            torch.cuda.empty_cache()


def largest_batch(model: CLAVER, args, limit: int = 4096) -> int:
    ok, bad = 0, 1
    while bad <= limit and fits(model, args, bad):
        ok, bad = bad, bad * 2
    if bad > limit:
        return ok
    while bad - ok > 1:
        mid = (ok + bad) // 2
        ok, bad = (mid, bad) if fits(model, args, mid) else (ok, mid)
    return ok


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="ViT-B-16")
    ap.add_argument("--frames", default="8,32")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--layout", default="kmt")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", choices=("bf16", "fp16", "none"), default="bf16")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--classes", type=int, default=400, help="classes per prompt set (Kinetics-400: 400)")
    ap.add_argument("--prompt-sets", type=int, default=5, help="K prompt sets per step (released: 5)")
    ap.add_argument("--max-batch", action="store_true", help="also search the largest batch that fits (CUDA)")
    args = ap.parse_args(argv)
    if args.max_batch and torch.device(args.device).type != "cuda":
        ap.error("--max-batch needs a CUDA device (it detects out-of-memory errors)")

    where = torch.cuda.get_device_name(args.device) if torch.device(args.device).type == "cuda" else "CPU"
    print(f"{args.arch} {args.size}x{args.size}, {args.layout}, amp {args.amp}, {args.prompt_sets} prompt sets x "
          f"{args.classes} classes, {where}, torch {torch.__version__}")  # fmt: skip
    print("| frames | attention | batch | step ms | peak GiB | largest batch |")
    print("|---|---|---|---|---|---|")
    rows = []
    for frames in (int(f) for f in args.frames.split(",")):
        for impl in IMPLS:
            model = build(args.arch, frames, impl, args.layout, args.device)
            try:
                r = measure(model, args, args.batch)
            except torch.OutOfMemoryError:
                r = {"ms": float("nan"), "peak_gib": float("nan")}
            r.update(frames=frames, impl=impl, batch=args.batch)
            r["largest_batch"] = largest_batch(model, args) if args.max_batch else None
            rows.append(r)
            largest = "" if r["largest_batch"] is None else str(r["largest_batch"])
            peak = "n/a" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.2f}"
            print(f"| {frames} | {impl} | {args.batch} | {r['ms']:.1f} | {peak} | {largest} |", flush=True)
            del model
            if torch.device(args.device).type == "cuda":
                torch.cuda.empty_cache()
    return rows


if __name__ == "__main__":
    main()
