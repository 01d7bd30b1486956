"""Evaluate a CLAVER checkpoint on an annotation file (multi-view: clips x crops).

    python -m claver.evaluate --config configs/X.yaml --checkpoint runs/x/model.safetensors \
        [--opts data.num_clips 4 data.num_crops 3]

The checkpoint is a CLAVER checkpoint (``.safetensors`` + ``.json``) or a training state
(``last.pt``) of the same config. Prints top-1, top-5 and mean class accuracy as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from .engine import evaluate, init_distributed, make_loader, prompt_tokens
from .factory import create_model, load_checkpoint
from .labels import class_names
from .train_config import TrainConfig, load_config


def run(cfg: TrainConfig, checkpoint: str | Path) -> dict:
    dist_ = init_distributed()
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".pt":
        m = cfg.model
        model = create_model(m.arch, None, cfg.data.frames, m.layout, temporal_layers=m.temporal_layers)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["model"])
    else:
        model = load_checkpoint(checkpoint, frames=cfg.data.frames, layout=cfg.model.layout)
    model.to(dist_.device)
    loader, _ = make_loader(cfg, train=False, dist_=dist_)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[cfg.optim.amp]
    return evaluate(model, loader, prompt_tokens(cfg), len(class_names(cfg.data.labels)), dist_, amp)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--opts", nargs="*", default=[])
    args = ap.parse_args(argv)
    print(json.dumps(run(load_config(args.config, args.opts), args.checkpoint), indent=2))


if __name__ == "__main__":
    main()
