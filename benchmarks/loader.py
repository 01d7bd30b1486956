"""How fast the loaders deliver clips: decoding, sampling and transforms together. The decoders
(PyAV, torchcodec, decord: those that can decode here) each reading only the sampled frames
(claver.data.video), against the former path that decoded every frame of the video with PyAV and
then sampled; the training loader (augmented) and the evaluation loader (centre crop), the best
of 3 passes each, the loaders taking turns. All deliver what claver.engine's loaders deliver:
uint8 clips with their colour jitter drawn, which the training loop applies on its device with
the normalisation (``finish``); what that costs on this CPU is printed after the table.

    python -m benchmarks.loader [--videos 16] [--frames 8,16,32] [--workers 1,2] [--out DIR]
                                [--decoders pyav,torchcodec,decord]
    python -m benchmarks.loader --config configs/X.yaml [--opts ...]   # a real dataset instead

The generated clips look like Kinetics': 340 x 256, 10 s at 30 fps, H.264 in MP4 with a keyframe
every 2 s (as YouTube encodes), moving content. Prints a Markdown table of clips per second;
compare with the training step's clips per second to see whether decoding starves the
accelerator.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from claver.data.dataset import VideoDataset, collate
from claver.data.transforms import finish
from claver.data.video import BACKENDS, DecodeError, unavailable, write_mp4
from claver.engine import init_distributed, make_loader
from claver.train_config import load_config


def make_clips(out: Path, count: int, seconds: int = 10, fps: int = 30, size=(340, 256)) -> Path:
    """``count`` generated H.264 clips and an annotation file ``out/train.txt``."""
    out.mkdir(parents=True, exist_ok=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    lines = []
    for v in range(count):
        rng = np.random.default_rng(v)
        base = rng.integers(0, 255, 3)

        def frames(v=v, base=base, rng=rng):
            for i in range(seconds * fps):
                img = np.empty((h, w, 3), np.uint8)
                img[:] = ((base + 2 * i + (xx[..., None] + yy[..., None]) // 4) % 256).astype(np.uint8)
                cx, cy = (37 * v + 5 * i) % w, (23 * v + 3 * i) % h
                img[max(cy - 20, 0) : cy + 20, max(cx - 20, 0) : cx + 20] = rng.integers(0, 255, 3)
                yield img

        write_mp4(out / f"{v:03d}.mp4", frames(), fps=fps, g=2 * fps, keyint_min=2 * fps)
        lines.append(f"{v:03d}.mp4 {v % 4}")
    (out / "train.txt").write_text("\n".join(lines) + "\n")
    return out / "train.txt"


class FullDecodeDataset(VideoDataset):
    """The former loader: every frame of the video decoded to RGB, then the clip sampled."""

    def read_clip(self, path: Path, rng: np.random.Generator) -> torch.Tensor:
        try:
            with av.open(str(path)) as c:
                video = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
        except (av.FFmpegError, ValueError) as e:
            raise DecodeError(f"cannot read {path}: {e}") from e
        idx, _ = self.sample_indices(len(video), rng)  # the transforms resize
        return torch.from_numpy(video[idx]).permute(0, 3, 1, 2)


def clips_per_second(datasets: list[VideoDataset], workers: int, rounds: int = 3, batch: int = 4) -> list[float]:
    """Clips per second of each dataset's loader: the best of ``rounds`` passes, the loaders
    taking turns (after an untimed pass that starts the workers), so that a slow spell of the
    machine falls on all."""
    options = dict(batch_size=batch, num_workers=workers, collate_fn=collate, persistent_workers=workers > 0)
    loaders = [torch.utils.data.DataLoader(d, **options) for d in datasets]
    for loader in loaders:
        for _ in loader:
            pass
    best = [0.0] * len(loaders)
    for _ in range(rounds):
        for k, loader in enumerate(loaders):
            clips, t0 = 0, time.perf_counter()
            for _, labels, _ in loader:
                clips += len(labels)
            best[k] = max(best[k], clips / (time.perf_counter() - t0))
    return best


def measure(cfg, batches: int = 20) -> dict[str, float]:
    """Clips per second of a training config's own loader (its dataset, workers, batch size)."""
    loader, sampler = make_loader(cfg, train=True, dist_=init_distributed())
    sampler.set_epoch(0)
    clips, t0 = 0, time.perf_counter()
    for n, (_, labels, _) in enumerate(loader, start=1):
        clips += len(labels)
        if n == batches:
            break
    seconds = time.perf_counter() - t0
    return {"clips": clips, "seconds": seconds, "clips_per_second": clips / seconds}


def table(annotations: Path, root: Path, frames: list[int], workers: list[int], decoders: list[str]) -> str:
    usable = [d for d in decoders if unavailable(d) is None]
    rows = [
        "| loader | T | workers | full decode, PyAV | " + " | ".join(usable) + " |",
        "|---|---|---|---|" + "---|" * len(usable),
    ]
    for train in (True, False):
        for t in frames:
            for w in workers:
                options = dict(frames=t, train=train, raw=True)
                datasets = [FullDecodeDataset(annotations, root, 4, **options)]
                datasets += [VideoDataset(annotations, root, 4, decoder=d, **options) for d in usable]
                speeds = clips_per_second(datasets, w)
                mode = "training (augmented)" if train else "evaluation (centre crop)"
                rows.append(f"| {mode} | {t} | {w} | " + " | ".join(f"{v:.2f}" for v in speeds) + " |")
                print(rows[-1], flush=True)
    rows.append("")
    rows += [f"not measured: {d} {unavailable(d)}" for d in decoders if d not in usable]
    for t in frames:
        ms = finish_ms(annotations, root, t)
        rows.append(f"finishing training clips on this CPU (one thread), T = {t}: {ms:.1f} ms per clip")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def finish_ms(annotations: Path, root: Path, frames: int, batch: int = 4, rounds: int = 3) -> float:
    """Milliseconds per clip of the training loop's ``finish`` (colour jitter, grayscale,
    normalisation) on the CPU with one thread: the best of ``rounds`` passes over the clips."""
    dataset = VideoDataset(annotations, root, 4, frames=frames, train=True, raw=True)
    batches = [
        collate([dataset[i] for i in range(s, min(s + batch, len(dataset)))]) for s in range(0, len(dataset), batch)
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            for clips, _, _ in batches:
                finish(clips, "imagenet", "cpu")
            best = min(best, (time.perf_counter() - t0) / len(dataset))
    finally:
        torch.set_num_threads(threads)
    return best * 1000


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--frames", default="8,16,32")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--decoders", default=",".join(BACKENDS), help="the video backends to compare")
    ap.add_argument("--out", help="where to write the clips (default: a temporary folder)")
    ap.add_argument("--config", help="measure this training config's loader instead")
    ap.add_argument("--opts", nargs="*", default=[])
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args(argv)
    if args.config:
        r = measure(load_config(args.config, args.opts), args.batches)
        line = f"{r['clips']} clips in {r['seconds']:.2f} s: {r['clips_per_second']:.1f} clips/s"
        print(line)
        return line
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        ann = make_clips(root, args.videos, args.seconds)
        frames, workers = ([int(x) for x in a.split(",")] for a in (args.frames, args.workers))
        return table(ann, root, frames, workers, args.decoders.split(","))


if __name__ == "__main__":
    main()
