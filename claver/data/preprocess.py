"""Re-encode a dataset's videos to a smaller short side, so decoding does not starve the GPU.

    python -m claver.data.preprocess --annotations train.txt --root /data/k400 --out /data/k400_256 \
        [--short-side 256] [--workers 8]

Writes every video of the annotation file under ``out`` at the same relative path (as .mp4),
and ``out/<annotation file name>`` pointing at them. Broken videos are reported and left out.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av

from .video import DecodeError, open_video, write_mp4


def reencode(src: Path, dst: Path, short_side: int) -> None:
    """``src`` as H.264 at ``dst``, its short side at most ``short_side``, at its own frame rate;
    frames stream through one at a time (memory does not grow with the video's length)."""
    with open_video(src, "pyav") as video:
        info = video.info
        size = short_side if min(info.width, info.height) > short_side else None
        even = (frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2] for frame in video.frames(size))  # yuv420p
        try:
            write_mp4(dst, even, fps=info.fps or 25)
        except av.FFmpegError as e:  # the source broke off mid-stream
            raise DecodeError(f"cannot re-encode {src}: {type(e).__name__}: {e}") from e


def _job(args):
    src, dst, short_side = args
    try:
        reencode(src, dst, short_side)
        return None
    except DecodeError as e:
        return str(e)


def preprocess(annotations, root, out, short_side: int = 256, workers: int = 4) -> tuple[Path, list[str]]:
    """Returns the new annotation file and the problems met."""
    root, out = Path(root), Path(out)
    kept, jobs = [], []
    for line in Path(annotations).read_text().split("\n"):
        if not line.strip():
            continue
        rel, label = line.rsplit(maxsplit=1)
        new_rel = str(Path(rel).with_suffix(".mp4"))
        jobs.append((root / rel, out / new_rel, short_side))
        kept.append(f"{new_rel} {label}")
    # Workers start from a fresh interpreter: a forked one would inherit this process's FFmpeg
    # scaling contexts without their slice threads, and freeing one there (a garbage collection
    # in the child) waits for those threads forever.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=spawn) as pool:
        results = list(pool.map(_job, jobs))
    problems = [r for r in results if r is not None]
    lines = [ln for ln, r in zip(kept, results) if r is None]
    new_ann = out / Path(annotations).name
    new_ann.write_text("\n".join(lines) + "\n")
    return new_ann, problems


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--short-side", type=int, default=256)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args(argv)
    ann, problems = preprocess(args.annotations, args.root, args.out, args.short_side, args.workers)
    for p in problems:
        print(f"skipped: {p}")
    print(f"wrote {ann} ({len(problems)} videos skipped)")


if __name__ == "__main__":
    main()
