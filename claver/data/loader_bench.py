"""How fast the training loader delivers clips: decoding, sampling and augmentation together.

    python -m claver.data.loader_bench --config configs/X.yaml [--opts ...] [--batches 20]

Prints clips per second; compare with the training step's clips per second to see whether
decoding starves the accelerator (then preprocess the videos or add workers).
"""

from __future__ import annotations

import argparse
import time

from ..engine import init_distributed, make_loader
from ..train_config import load_config


def measure(cfg, batches: int = 20) -> dict[str, float]:
    loader, sampler = make_loader(cfg, train=True, dist_=init_distributed())
    sampler.set_epoch(0)
    clips, t0 = 0, time.perf_counter()
    for n, (x, _, _) in enumerate(loader, start=1):
        clips += 0 if x is None else x.shape[0]
        if n == batches:
            break
    seconds = time.perf_counter() - t0
    return {"clips": clips, "seconds": seconds, "clips_per_second": clips / seconds}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--opts", nargs="*", default=[])
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args(argv)
    r = measure(load_config(args.config, args.opts), args.batches)
    print(f"{r['clips']} clips in {r['seconds']:.2f} s: {r['clips_per_second']:.1f} clips/s")


if __name__ == "__main__":
    main()
