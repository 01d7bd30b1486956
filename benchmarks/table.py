"""The CPU ratio table: every implementation measured in one process, interleaved.

    python -m benchmarks.table [--shapes b16-8f,b32-8f] [--layouts kmt,kmct] [--batch 2]
                               [--rounds 5] [--memory] [--no-flex]

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

from benchmarks.peers import DESCRIPTION, SHAPES, allowed_pairs, flops, make

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


def measure(steps: dict, rounds: int) -> dict[str, float]:
    """Median seconds per pass; implementations take turns within each round."""
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def peak_memory(impl: str, shape: str, layout: str, mode: str, batch: int) -> str:
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
    args = ap.parse_args(argv)

    from kron_attn import _C

    print("```")
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, kernel ISA {_C.cpu_isa()}")
    print(f"torch {torch.__version__}, float32, B = {args.batch}, {time.strftime('%Y-%m-%d')}")
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
                        steps[impl] = make(impl, shape, layout, mode)
                        steps[impl]()  # warm-up, compilation
                    except NotImplementedError:
                        steps.pop(impl, None)
                        skipped[impl] = "n/a"
                t = measure(steps, args.rounds)
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
                    row += [peak_memory(i, shape_name, layout, mode, args.batch) for i in ("ours", "sdpa_mask", "mha")]
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
