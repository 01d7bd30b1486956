"""A built-in motion dataset whose classes come in exact time-reversal pairs.

    python -m claver.data.synthetic --out DIR [--per-class 24] [--frames 16] [--size 64] [--seed 0]

Writes real mp4 files (DIR/videos/<class>/<n>.mp4), annotation files DIR/train.txt and
DIR/val.txt ("relative/path.mp4 label_id" per line), DIR/labels.csv ("id,name") and interpretive
descriptions DIR/prompts.json (claver-prompts/1). Class 2k+1 is class 2k played backwards, frame
for frame, so a model that averages per-frame features sees the same bag of frames for both and
cannot tell them apart: only temporal modelling can.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..prompts.format import FAMILIES, PromptClass, PromptFile
from .video import write_mp4


@dataclass(frozen=True)
class Motion:
    name: str
    reverse_name: str
    # Two descriptions per direction (the decomposition and synonym families). The two
    # directions are worded differently and at different lengths on purpose: a text tower
    # trained from scratch maps sentences that differ in one word ("left" / "right") to
    # almost the same feature, and then neither branch has a gradient to tell the pair apart.
    forward: tuple[str, str]
    backward: tuple[str, str]


MOTIONS = (
    Motion("moving left", "moving right",
           ("A shape slides leftward across the frame.", "Leftward travel, heading west."),
           ("Starting near the left edge, an object glides over to the right side of the picture.",
            "It drifts right, toward the eastern border, at a steady pace.")),
    Motion("moving up", "moving down",
           ("A shape rises upward.", "Ascending toward the top, climbing higher."),
           ("From the top of the picture, an object sinks all the way down to the bottom edge.",
            "It falls and drops downward, descending steadily to the floor.")),
    Motion("growing", "shrinking",
           ("A small shape swells bigger and bigger.", "Expanding, inflating, getting large."),
           ("A large object in the middle contracts until only a small dot of it remains.",
            "It dwindles and shrinks, becoming tiny and compact.")),
    Motion("rotating clockwise", "rotating counter-clockwise",
           ("A single hand sweeps clockwise around the centre.", "Turning like the hands of a clock."),
           ("Around a fixed pivot in the middle, one arm turns backwards, against the way a clock runs.",
            "An anticlockwise spin, counter to a watch, in reverse.")),
    Motion("appearing", "disappearing",
           ("A shape fades in until it is fully visible.", "Emerging, materialising out of nothing."),
           ("A clearly visible object slowly fades out until only the empty background is left behind.",
            "It vanishes, dissolving and becoming invisible.")),
    Motion("brightening", "darkening",
           ("An empty scene lightens, from dusk to glare.", "Getting lighter, the light turns on."),
           ("The whole picture, with nothing in it, dims steadily from bright daylight down to near black.",
            "Darkness falls, the lights go down into gloom.")),
)  # fmt: skip


def class_names() -> list[str]:
    return [n for m in MOTIONS for n in (m.name, m.reverse_name)]


def render(motion: int, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One forward clip of MOTIONS[motion]: ``(frames, size, size, 3)`` uint8."""
    background = rng.integers(0, 60, size=3)
    if motion == 5:  # an empty field, lighter than the dark ground of the shapes
        background = background + 160
    color = rng.integers(120, 256, size=3)
    radius = size * rng.uniform(0.12, 0.2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c0 = rng.uniform(0.3, 0.7, size=2) * size
    span = size * rng.uniform(0.45, 0.6)
    angle0 = rng.uniform(0, math.pi)
    clip = np.empty((frames, size, size, 3), np.uint8)
    for f in range(frames):
        a = f / max(frames - 1, 1)  # 0 -> 1 over the clip
        cy, cx, r, alpha, light = c0[0], c0[1], radius, 1.0, 1.0
        if motion == 0:
            cx = size / 2 + span * (0.5 - a)
        elif motion == 1:
            cy = size / 2 + span * (0.5 - a)
        elif motion == 2:
            r = size * (0.08 + 0.3 * a)
        elif motion == 4:
            alpha = a
        elif motion == 5:
            light = 0.1 + 0.9 * a
        if motion == 3:
            # A one-sided hand turned by three quarters of a turn: its tip visits distant patches, and
            # consecutive sampled frames are far less than half a turn apart. Image y points down:
            # this is clockwise.
            th = angle0 + 1.5 * math.pi * a
            d = (xx - size / 2) * math.sin(th) - (yy - size / 2) * math.cos(th)
            along = (xx - size / 2) * math.cos(th) + (yy - size / 2) * math.sin(th)
            mask = (np.abs(d) < size * 0.07) & (along > -size * 0.05) & (along < size * 0.45)
        elif motion == 5:  # no shape: the whole field's light ramps, unlike a shape fading on a dark ground
            mask = np.zeros((size, size), bool)
        else:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        img = np.broadcast_to(background, (size, size, 3)).astype(np.float32)
        img = np.where(mask[..., None], alpha * color + (1 - alpha) * img, img) * light
        img += rng.normal(0, 4, size=img.shape)
        clip[f] = np.clip(img, 0, 255).astype(np.uint8)
    return clip


def generate(out: str | Path, per_class: int = 24, frames: int = 16, size: int = 64, seed: int = 0,
             val_fraction: float = 0.25) -> Path:  # fmt: skip
    """Write the dataset under ``out``; returns ``out``. Each class gets ``per_class`` videos."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    names = class_names()
    lines = {"train": [], "val": []}
    n_val = max(1, round(per_class * val_fraction))
    for m in range(len(MOTIONS)):
        for i in range(per_class):
            clip = render(m, frames, size, rng)
            split = "val" if i < n_val else "train"
            for label, c in ((2 * m, clip), (2 * m + 1, clip[::-1])):
                rel = f"videos/{names[label].replace(' ', '_')}/{i:04d}.mp4"
                write_mp4(out / rel, c, fps=8, codec="mpeg4", bit_rate=2_000_000)
                lines[split].append(f"{rel} {label}")
    for split, rows in lines.items():
        (out / f"{split}.txt").write_text("\n".join(rows) + "\n")
    (out / "labels.csv").write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)))
    classes = []
    for m in MOTIONS:
        for name, texts in ((m.name, m.forward), (m.reverse_name, m.backward)):
            desc = {f: [] for f in FAMILIES}
            desc["decomposition"], desc["synonyms"] = [texts[0]], [texts[1]]
            classes.append(PromptClass(len(classes), name, desc))
    info = {"model": "none: written with the dataset generator", "backend": "claver.data.synthetic"}
    PromptFile("synthetic-motion", list(FAMILIES), info, classes).save(out / "prompts.json")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-class", type=int, default=24, help="videos per class")
    ap.add_argument("--frames", type=int, default=16, help="frames per video")
    ap.add_argument("--size", type=int, default=64, help="frame height and width")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = generate(args.out, args.per_class, args.frames, args.size, args.seed)
    print(f"wrote {len(class_names())} classes x {args.per_class} videos to {out}")


if __name__ == "__main__":
    main()
