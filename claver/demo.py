"""The built-in demo: does Kronecker temporal attention see the direction of time?

    python -m claver.demo [--out runs/demo] [--per-class 132] [--epochs N] [--runs kmt,kmct,framemean]
        [--config YAML] [--opts KEY VALUE ...]

Generates the motion dataset (:mod:`claver.data.synthetic`: 12 classes in 6 exact time-reversal
pairs, real mp4 files), then trains and evaluates a tiny CLAVER from random initialisation three
times with the same recipe (``--config``, by default claver/recipes/motion.yaml, which ships in the
package): with kmt temporal blocks, with kmct, and with no temporal blocks at all (the frame-mean
baseline, which sees the same bag of frames for both classes of a pair). Writes each run under
OUT/<name>/, a figure OUT/demo.png, and prints

    demo: kmt_top1=X kmct_top1=X framemean_top1=X framemean_reversal_top1=X

``reversal_top1`` is the accuracy of telling a video from its time reversal: the fraction of
validation videos whose true class scores above its pair's other class (chance: 0.5).
"""

from __future__ import annotations

if not __package__:  # run by its path (python claver/demo.py): no package for the imports below
    import _script

    _script.run_as_module(__file__)

import argparse
import csv
import time
from dataclasses import replace
from pathlib import Path

import torch

from .data import synthetic
from .engine import Dist, make_loader, predict_probs, prompt_tokens
from .factory import load_checkpoint
from .metrics import accuracy
from .train import train
from .train_config import TrainConfig, load_config

CONFIG = Path(__file__).resolve().parent / "recipes" / "motion.yaml"
RUNS = {"kmt": ("kmt", None), "kmct": ("kmct", None), "framemean": ("kmt", 0)}  # name: (layout, temporal_layers)


def reversal_top1(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of videos whose class beats its time-reversed partner (class ``label ^ 1``)."""
    idx = torch.arange(len(labels))
    return (probs[idx, labels] > probs[idx, labels ^ 1]).float().mean().item()


def run_config(base: TrainConfig, data: Path, out: Path, name: str) -> TrainConfig:
    layout, depth = RUNS[name]
    return replace(
        base,
        data=replace(base.data, root=str(data), train=str(data / "train.txt"), val=str(data / "val.txt"),
                     labels=str(data / "labels.csv"), prompts=str(data / "prompts.json")),
        model=replace(base.model, layout=layout, temporal_layers=depth),
        run=replace(base.run, out=str(out / name)),
    )  # fmt: skip


def plot(out: Path, names: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in names:
        with open(out / name / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        a.plot([int(r["epoch"]) + 1 for r in rows], [float(r["loss"]) for r in rows], label=name)
        evals = [r for r in rows if r.get("val_top1")]
        b.plot([int(r["epoch"]) + 1 for r in evals], [float(r["val_top1"]) for r in evals], "o-", label=name)
    a.set(xlabel="epoch", ylabel="training loss", title="loss")
    b.set(xlabel="epoch", ylabel="top-1", title="validation top-1 (12 classes)", ylim=(0, 1))
    b.axhline(0.5, color="grey", lw=0.8, ls="--", label="pair right, direction at chance")
    for ax in (a, b):
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=120)
    plt.close(fig)
    return out / "demo.png"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/demo")
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--per-class", type=int, default=132, help="videos per class (a quarter for validation)")
    ap.add_argument("--epochs", type=int, default=None, help="override optim.epochs")
    ap.add_argument("--runs", default=",".join(RUNS), help="which of kmt,kmct,framemean to train")
    ap.add_argument("--opts", nargs="*", default=[], help="KEY VALUE pairs overriding the config")
    args = ap.parse_args(argv)
    out = Path(args.out)
    base = load_config(args.config, args.opts + (["optim.epochs", str(args.epochs)] if args.epochs else []))
    t0 = time.time()
    data = out / "data"
    if not (data / "val.txt").exists():
        synthetic.generate(
            data, per_class=args.per_class, frames=base.model.frames, size=base.data.input_size, seed=base.run.seed
        )
    print(f"demo: dataset in {data} ({time.time() - t0:.0f} s)", flush=True)

    names = args.runs.split(",")
    results = {}
    for name in names:
        cfg = run_config(base, data, out, name)
        t = time.time()
        train(cfg, resume="auto")  # a finished run is not repeated: the demo is safe to run twice
        model = load_checkpoint(Path(cfg.run.out) / "model.safetensors", layout=cfg.model.layout)
        loader, _ = make_loader(cfg, train=False, dist_=Dist())
        classes = len(synthetic.class_names())
        probs, labels, _ = predict_probs(model, loader, prompt_tokens(cfg), classes, Dist())
        results[f"{name}_top1"] = accuracy(probs, labels, classes)["top1"]
        results[f"{name}_reversal_top1"] = reversal_top1(probs, labels)
        print(f"demo: {name}: top1={results[f'{name}_top1']:.3f} reversal_top1={results[f'{name}_reversal_top1']:.3f} "
              f"({time.time() - t:.0f} s)", flush=True)  # fmt: skip
    print(f"demo: figure {plot(out, names)}; total {time.time() - t0:.0f} s", flush=True)
    keys = ("kmt_top1", "kmct_top1", "framemean_top1", "framemean_reversal_top1")
    print("demo: " + " ".join(f"{k}={results[k]:.4f}" for k in keys if k in results), flush=True)


if __name__ == "__main__":
    main()
