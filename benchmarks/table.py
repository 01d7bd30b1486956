"""The ratio table: every implementation measured in one process, interleaved.

    python -m benchmarks.table [--shapes b16-8f,b32-8f] [--layouts kmt,kmct] [--batch 2]
                               [--rounds 5] [--memory] [--no-flex] [--device cuda --dtype bfloat16]

Columns: our time, useful GFLOP/s (4·B·H·D·Σ allowed pairs, x3.5 with the backward),
dense-equivalent GFLOP/s (the same with all N² pairs), then peer time / our time for each peer,
and with --memory the peak extra memory of a pass (each measured in a fresh process).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time

import torch

import kron_attn
from benchmarks.peers import DESCRIPTION, allowed_pairs, flops, make
from benchmarks.shapes import SHAPES

PEERS = ("mha", "sdpa_mask", "flex", "sdpa_dense")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(steps: dict, rounds: int, device: str) -> dict[str, float]:
    """Median seconds per pass; implementations take turns within each round."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def peak_memory(impl: str, shape: str, layout: str, mode: str, batch: int, dtype: str, device: str) -> str:
    """Peak extra memory of one pass: a fresh process's resident set on the CPU, the caching
    allocator's peak on a GPU."""
    if device == "cuda":
        try:
            step = make(impl, SHAPES[shape].with_batch(batch), layout, mode, getattr(torch, dtype), device)
        except NotImplementedError:
            return "n/a"
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return f"{(torch.cuda.max_memory_allocated() - before) / 2**20:.1f}"
    cmd = [sys.executable, "-m", "benchmarks.peak_memory", impl, shape, layout, mode, str(batch)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "err"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--layouts", default="kmt,kmct")
    ap.add_argument("--modes", default="fwd,fwdbwd")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--memory", action="store_true", help="also measure peak extra memory (slower)")
    ap.add_argument("--no-flex", action="store_true", help="skip FlexAttention (its compilation is slow)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)

    from kron_attn import _C

    print("```")
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name()}, kernel backends {kron_attn.available_backends()}")
    else:
        print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, kernel ISA {_C.cpu_isa()}")
    print(f"torch {torch.__version__}, {args.dtype}, B = {args.batch}, {time.strftime('%Y-%m-%d')}")
    for p in PEERS:
        print(f"  {p}: {DESCRIPTION[p]}")
    print("```")
    cols = ["shape", "layout", "pass", "ours ms", "useful GF/s", "dense-eq GF/s"] + [f"{p}/ours" for p in PEERS]
    if args.memory:
        cols += ["ours MiB", "sdpa_mask MiB", "mha MiB"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for shape_name in args.shapes.split(","):
        shape = SHAPES[shape_name].with_batch(args.batch)
        for layout in args.layouts.split(","):
            for mode in args.modes.split(","):
                steps, skipped = {}, {}
                for impl in ("ours", "ours_module") + PEERS:
                    if impl == "flex" and args.no_flex:
                        skipped[impl] = "skipped"
                        continue
                    try:
                        steps[impl] = make(impl, shape, layout, mode, dtype, args.device)
                        steps[impl]()  # warm-up, compilation
                    except NotImplementedError:
                        steps.pop(impl, None)
                        skipped[impl] = "n/a"
                t = measure(steps, args.rounds, args.device)
                pairs = allowed_pairs(shape, layout)
                row = [
                    shape_name,
                    layout,
                    mode,
                    f"{t['ours'] * 1e3:.1f}",
                    f"{flops(shape, pairs, mode) / t['ours'] / 1e9:.0f}",
                    f"{flops(shape, shape.N**2, mode) / t['ours'] / 1e9:.0f}",
                ]
                for p in PEERS:
                    ref = "ours_module" if p == "mha" else "ours"
                    row.append(f"{t[p] / t[ref]:.2f}" if p in t else skipped[p])
                if args.memory:
                    row += [
                        peak_memory(i, shape_name, layout, mode, args.batch, args.dtype, args.device)
                        for i in ("ours", "sdpa_mask", "mha")
                    ]
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
