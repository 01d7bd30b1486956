"""What ``python -m claver.predict`` costs on a long phone-sized video against a 1-second one:
peak memory (max RSS of the process) and wall time, each in a fresh process, with each video
backend that can decode here (``--decoder``).

    python -m benchmarks.predict_video [--seconds 90] [--arch ViT-B-16] [--decoders pyav,torchcodec,decord] [--out DIR]

The videos are generated 1280 x 720 H.264 at 30 fps with a keyframe every 2 s and moving content;
the checkpoint is a randomly initialised CLAVER of ``--arch`` (weights do not change the cost).
The memory the video adds is the difference of the two peaks. One untimed run first fills the
page cache (checkpoint, libraries); then every (decoder, video) pair runs in turn, ``--repeat``
times, and the median of each is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import claver
from claver.data.video import BACKENDS, unavailable, write_mp4

SIZE = (1280, 720)
FPS = 30


def make_video(path: Path, seconds: int) -> Path:
    if path.is_file():  # kept from an earlier run with --out
        return path
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = ((xx + yy) // 8).astype(np.uint8)[..., None]
    rng = np.random.default_rng(seconds)

    def frames():
        for i in range(seconds * FPS):
            img = np.repeat(ramp + np.uint8(i % 256), 3, axis=2)
            cx, cy = (11 * i) % w, (7 * i) % h
            img[max(cy - 60, 0) : cy + 60, max(cx - 60, 0) : cx + 60] = rng.integers(0, 255, 3)
            yield img

    return write_mp4(path, frames(), fps=FPS, g=2 * FPS, keyint_min=2 * FPS, preset="veryfast")


def run_predict(video: Path, checkpoint: Path, labels_file: str, amp: str, decoder: str) -> tuple[float, float]:
    """(max RSS in MiB, wall seconds) of one ``claver.predict`` process."""
    cmd = [sys.executable, "-m", "claver.predict", str(video), "--labels-file", labels_file]
    cmd += ["--checkpoint", str(checkpoint), "--amp", amp, "--decoder", decoder]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the largest child's so far
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    peak = usage.ru_maxrss  # KiB
    return peak / 1024, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=90)
    ap.add_argument("--arch", default="ViT-B-16")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--labels-file", default="hmdb51", help="as claver.predict takes it (default: 51 classes)")
    ap.add_argument("--amp", default="bf16", help="as claver.predict takes it (default bf16; none: float32)")
    ap.add_argument("--decoders", default=",".join(BACKENDS), help="the video backends to compare")
    ap.add_argument("--out", type=Path, help="keep the videos and checkpoint here (default: a temporary folder)")
    args = ap.parse_args()
    decoders = [d for d in args.decoders.split(",") if unavailable(d) is None]
    for d in sorted(set(args.decoders.split(",")) - set(decoders)):
        print(f"not measured: {d} {unavailable(d)}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        checkpoint = claver.save_checkpoint(claver.create_model(args.arch, None, frames=8), out / "model")
        short, long = (make_video(out / f"{s}s_720p.mp4", s) for s in (1, args.seconds))
        videos = {1: short, args.seconds: long}
        run_predict(short, checkpoint, args.labels_file, args.amp, decoders[0])
        runs = {(d, s): [] for d in decoders for s in videos}
        for _ in range(args.repeat):
            for d, s in runs:
                runs[d, s].append(run_predict(videos[s], checkpoint, args.labels_file, args.amp, d))
        median = {key: [statistics.median(r[i] for r in runs[key]) for i in (0, 1)] for key in runs}
    print(f"labels: {args.labels_file}, amp: {args.amp}\n")
    print(f"| decoder | video (1280 x 720, {FPS} fps, H.264) | max RSS MiB | wall s |\n| --- | --- | --- | --- |")
    for (d, seconds), (rss, wall) in median.items():
        print(f"| {d} | {seconds} s | {rss:.0f} | {wall:.1f} |")
    for d in decoders:
        (rss1, wall1), (rss, wall) = median[d, 1], median[d, args.seconds]
        print(f"\n{d}: the {args.seconds}-s video adds {rss - rss1:.0f} MiB and {wall - wall1:.1f} s", end="")
    print()


if __name__ == "__main__":
    main()
