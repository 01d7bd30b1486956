"""What ``python -m claver.predict`` costs on a long phone-sized video against a 1-second one:
peak memory (max RSS of the process) and wall time, each in a fresh process.

    python -m benchmarks.predict_video [--seconds 90] [--arch ViT-B-16] [--out DIR]

The videos are generated 1280 x 720 H.264 at 30 fps with a keyframe every 2 s and moving content;
the checkpoint is a randomly initialised CLAVER of ``--arch`` (weights do not change the cost).
The memory the video adds is the difference of the two peaks. One untimed run first fills the
page cache (checkpoint, libraries); then the two videos alternate ``--repeat`` times and the
median of each is reported.
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
from claver.data.video import write_mp4

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


def run_predict(video: Path, checkpoint: Path, labels_file: str, amp: str) -> tuple[float, float]:
    """(max RSS in MiB, wall seconds) of one ``claver.predict`` process."""
    cmd = [sys.executable, "-m", "claver.predict", str(video), "--labels-file", labels_file]
    cmd += ["--checkpoint", str(checkpoint), "--amp", amp]
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
    ap.add_argument("--out", type=Path, help="keep the videos and checkpoint here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        checkpoint = claver.save_checkpoint(claver.create_model(args.arch, None, frames=8), out / "model")
        short, long = (make_video(out / f"{s}s_720p.mp4", s) for s in (1, args.seconds))
        videos = {1: short, args.seconds: long}
        run_predict(short, checkpoint, args.labels_file, args.amp)
        runs = {s: [] for s in videos}
        for _ in range(args.repeat):
            for s, v in videos.items():
                runs[s].append(run_predict(v, checkpoint, args.labels_file, args.amp))
        rows = [(s, *(statistics.median(r[i] for r in runs[s]) for i in (0, 1))) for s in videos]
    print(f"labels: {args.labels_file}, amp: {args.amp}\n")
    print(f"| video (1280 x 720, {FPS} fps, H.264) | max RSS MiB | wall s |\n| --- | --- | --- |")
    for seconds, rss, wall in rows:
        print(f"| {seconds} s | {rss:.0f} | {wall:.1f} |")
    print(f"\nthe {args.seconds}-s video adds {rows[1][1] - rows[0][1]:.0f} MiB and {rows[1][2] - rows[0][2]:.1f} s")


if __name__ == "__main__":
    main()
