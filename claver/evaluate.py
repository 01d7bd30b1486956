"""Evaluate a CLAVER checkpoint on an annotation file (multi-view: clips x crops), or on several
splits of a benchmark with their mean and spread.

    python -m claver.evaluate --config configs/X.yaml --checkpoint runs/x/model.safetensors \
        [--opts data.num_clips 4 data.num_crops 3]
    python -m claver.evaluate --config configs/zeroshot/hmdb51.yaml --checkpoint runs/k400_b16_32f/model.safetensors

The checkpoint is a CLAVER checkpoint (``.safetensors`` + ``.json``) or a training state
(``last.pt``) of the same config. Prints top-1, top-5 and mean class accuracy as JSON. With
``eval.splits`` set (the zero-shot configs), ``{split}`` in the data paths takes each value in
turn; the JSON then holds each split's metrics and their mean and standard deviation.
"""

from __future__ import annotations

if not __package__:  # run by its path (python claver/evaluate.py): no package for the imports below
    import _script

    _script.run_as_module(__file__)

import argparse
import json
import sys
from pathlib import Path

import torch

from .engine import Dist, evaluate, init_distributed, make_loader, prompt_tokens, read_training_state
from .factory import check_finite, create_model, load_checkpoint
from .labels import class_names
from .metrics import summarize_splits
from .train_config import TrainConfig, amp_dtype, for_split, load_config

SUMMARY = ("top1", "top5", "mean_class")


def load_model(cfg: TrainConfig, checkpoint: str | Path) -> torch.nn.Module:
    """The model of a CLAVER checkpoint or of a training state (``.pt``); a ValueError (one line,
    naming the file) for weights that cannot be used, non-finite ones included."""
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".pt":  # a training state (last.pt): the config says what model it holds
        model = create_model(**cfg.model.architecture())
        model.load_state_dict(read_training_state(checkpoint)["model"])
        check_finite(model, checkpoint)
        return model
    return load_checkpoint(checkpoint, frames=cfg.model.frames, layout=cfg.model.layout)


def evaluate_split(model: torch.nn.Module, cfg: TrainConfig, dist_: Dist) -> dict:
    """One annotation file (``data.val``) against one label list (``data.labels``)."""
    loader, _ = make_loader(cfg, train=False, dist_=dist_)
    amp = amp_dtype(cfg.optim.amp)
    return evaluate(model, loader, prompt_tokens(cfg), len(class_names(cfg.data.labels)), dist_, amp)


def run(cfg: TrainConfig, checkpoint: str | Path) -> dict:
    dist_ = init_distributed()
    model = load_model(cfg, checkpoint).to(dist_.device)
    if not cfg.eval.splits:
        return evaluate_split(model, cfg, dist_)
    per_split = {str(s): evaluate_split(model, for_split(cfg, s), dist_) for s in cfg.eval.splits}
    summary = summarize_splits([{k: r[k] for k in SUMMARY} for r in per_split.values()])
    return {
        "splits": per_split,
        "mean": {k: m for k, (m, _) in summary.items()},
        "std": {k: s for k, (_, s) in summary.items()},
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--opts", nargs="*", default=[])
    args = ap.parse_args(argv)
    try:
        result = run(load_config(args.config, args.opts), args.checkpoint)
    except (ValueError, FileNotFoundError) as e:  # the configuration or the checkpoint cannot be used
        print(f"claver.evaluate: {e}", file=sys.stderr)
        sys.exit(2)
    if init_distributed().main:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
