"""Train CLAVER.

    python -m claver.train --config configs/X.yaml [--opts KEY VALUE ...] [--resume auto|PATH]
    torchrun --nproc_per_node 8 -m claver.train --config ...      # DDP, one or many nodes

Each optimizer step sees ``optim.effective_batch`` clips (gradient accumulation over
``data.batch_size`` x world size); K of the A prompt sets are sampled per step. A checkpoint
(model, optimizer, scheduler, scaler, epoch, step, RNG) is written atomically at the end of every
epoch and every ``run.save_every_steps`` optimizer steps; ``--resume auto`` continues from the
newest one exactly where it stopped.
"""

from __future__ import annotations

if not __package__:  # run by its path (python claver/train.py): no package for the imports below
    import _script

    _script.run_as_module(__file__)

import argparse
import contextlib
import csv
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from .data.transforms import RawClips, finish, mix_batch
from .engine import evaluate, init_distributed, make_loader, prompt_tokens
from .factory import create_model, save_checkpoint
from .labels import class_names
from .text import prompt_set_loss, sample_prompt_sets
from .train_config import ConfigError, TrainConfig, amp_dtype, load_config, to_dict

log = logging.getLogger("claver.train")
CHECKPOINT = "last.pt"


def setup_logging(out: Path, main: bool) -> None:
    """The run's own logger: console and ``out/log.txt`` on the main process, warnings elsewhere."""
    fmt = logging.Formatter("%(asctime)s %(message)s")
    handlers = [logging.StreamHandler(sys.stdout)] + ([logging.FileHandler(out / "log.txt")] if main else [])
    for h in log.handlers:
        h.close()
    log.handlers = []
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO if main else logging.WARNING)
    log.propagate = False


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW as released: betas (0.9, 0.98); no weight decay on biases, norms, embeddings and the
    logit scale (1-D or scalar); the temporal transformer (new weights, unlike the CLIP towers)
    at ``temporal_lr_scale`` times the learning rate, the text tower at ``text_lr_scale`` times."""
    o = cfg.optim
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if ".temporal." in f".{name}":
            scale = o.temporal_lr_scale
        elif name.startswith("text."):
            scale = o.text_lr_scale
        else:
            scale = 1.0
        groups.setdefault((p.ndim <= 1 or "embedding" in name, scale), []).append(p)
    return torch.optim.AdamW(
        [
            {"params": ps, "weight_decay": 0.0 if no_decay else o.weight_decay, "lr": o.lr * scale}
            # the unscaled groups first: the logged lr (group 0's) is then optim.lr's schedule
            for (no_decay, scale), ps in sorted(groups.items(), key=lambda kv: (kv[0][1] != 1.0, kv[0]))
        ],
        lr=o.lr, betas=(0.9, 0.98), eps=1e-8,
    )  # fmt: skip


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    """Linear warm-up, then cosine to ``min_lr``, per optimizer step."""
    warm = cfg.optim.warmup_epochs * steps_per_epoch
    total = max(cfg.optim.epochs * steps_per_epoch, 1)
    floor = cfg.optim.min_lr / cfg.optim.lr if cfg.optim.lr else 0.0

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(total - warm, 1)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return f


def save_training_state(path: Path, model, opt, sched, scaler, epoch: int, step_in_epoch: int, global_step: int):
    """Atomically: write to a temporary file, then rename over the old checkpoint."""
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
        "torch_rng": torch.get_rng_state(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, resume: str | None = None) -> dict:
    """Run training (and per-epoch evaluation); returns the last evaluation's metrics."""
    dist_ = init_distributed()
    out = Path(cfg.run.out)
    if dist_.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    setup_logging(out, dist_.main)
    torch.manual_seed(cfg.run.seed + dist_.rank)

    names = class_names(cfg.data.labels)
    m = cfg.model
    model = create_model(pretrained=m.pretrained, **m.architecture()).to(dist_.device)
    if m.grad_checkpointing:
        model.set_grad_checkpointing(True)
    if m.freeze_text:
        model.freeze_text()
    tokens = prompt_tokens(cfg).to(dist_.device)
    core = model
    if dist_.world > 1:
        ids = [dist_.device.index] if dist_.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    train_loader, sampler = make_loader(cfg, True, dist_)
    val_loader, _ = make_loader(cfg, False, dist_) if cfg.data.val else (None, None)
    per_step = cfg.data.batch_size * dist_.world
    accumulate = max(1, round(cfg.optim.effective_batch / per_step))
    sampler.set_epoch(0)
    batches = len(train_loader)  # per epoch on this rank
    steps_per_epoch = max(1, math.ceil(batches / accumulate))
    opt = build_optimizer(core, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, steps_per_epoch))
    amp = amp_dtype(cfg.optim.amp)
    scaler = torch.amp.GradScaler(dist_.device.type, enabled=amp == torch.float16)

    epoch0, start, global_step = 0, 0, 0
    ckpt = out / CHECKPOINT if resume == "auto" else (Path(resume) if resume else None)
    if ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        core.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        epoch0, start, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        log.info(f"resumed from {ckpt}: epoch {epoch0}, batch {start}, optimizer step {global_step}")
    elif resume not in (None, "auto"):
        raise FileNotFoundError(f"--resume: no checkpoint at {resume}")

    metrics_path = out / "metrics.csv"
    metrics = {}
    log.info(f"{len(names)} classes, {tokens.shape[0]} prompt sets, {batches} batches per epoch on each rank, "
             f"accumulating {accumulate} batches per optimizer step")  # fmt: skip
    tb = _tensorboard(out) if dist_.main else None
    try:
        for epoch in range(epoch0, cfg.optim.epochs):
            sampler.set_epoch(epoch, start * cfg.data.batch_size)  # start: batches already done
            train_loader.dataset.set_epoch(epoch)
            model.train()
            skipped, losses, step_losses = 0, [], []
            bar = tqdm(train_loader, desc=f"epoch {epoch}", disable=not dist_.main, initial=start,
                       total=batches, dynamic_ncols=True)  # fmt: skip
            for i, (clips, labels, bad) in enumerate(bar, start=start):
                skipped += len(bad)
                for s in bad:
                    log.warning(f"skipped {s.path}: {s.reason}")
                sync = (i + 1) % accumulate == 0 or i + 1 == batches
                weight = 1.0
                if clips is None and sync and dist_.world > 1:
                    # every rank must join the gradient all-reduce: a zero-weight pass over a blank clip
                    clips = RawClips(
                        torch.zeros(1, m.frames, 3, cfg.data.input_size, cfg.data.input_size, dtype=torch.uint8)
                    )
                    labels, weight = torch.zeros(1, dtype=torch.long), 0.0
                if clips is not None:
                    rng = np.random.default_rng([cfg.run.seed, epoch, i, dist_.rank])
                    clips, labels = finish(clips, core.config.normalization, dist_.device), labels.to(dist_.device)
                    if weight and (cfg.optim.mixup > 0 or cfg.optim.cutmix > 0):
                        clips, target = mix_batch(clips, labels, len(names), cfg.optim.mixup, cfg.optim.cutmix,
                                                  cfg.optim.smoothing, rng=rng)  # fmt: skip
                    else:
                        target = labels
                    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
                    k = min(cfg.optim.prompt_sets, tokens.shape[0])
                    # DDP: all-reduce the gradients once per optimizer step, on its last micro-batch
                    local = model.no_sync() if dist_.world > 1 and not sync else contextlib.nullcontext()
                    with local:
                        with torch.autocast(dist_.device.type, dtype=amp, enabled=amp is not None):
                            logits = model(clips, sample_prompt_sets(tokens, k, g))
                        loss = prompt_set_loss(logits.float(), target)
                        scaler.scale(loss * weight / accumulate).backward()
                    if weight:
                        losses.append(loss.item())
                        step_losses.append(loss.item())
                if sync:
                    if cfg.optim.clip_grad:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(core.parameters(), cfg.optim.clip_grad)
                    scaler.step(opt)
                    scaler.update()
                    opt.zero_grad(set_to_none=True)
                    lr = sched.get_last_lr()[0]
                    sched.step()
                    global_step += 1
                    if dist_.main:
                        step_loss = float(np.mean(step_losses)) if step_losses else float("nan")
                        _append_csv(out / "steps.csv", {"step": global_step, "loss": step_loss})
                        _scalars(tb, global_step, {"train/loss": step_loss, "train/lr": lr})
                    step_losses = []
                    stop = cfg.run.stop_after_steps and global_step >= cfg.run.stop_after_steps
                    every = cfg.run.save_every_steps and global_step % cfg.run.save_every_steps == 0
                    if dist_.main and (stop or every):
                        save_training_state(out / CHECKPOINT, core, opt, sched, scaler, epoch, i + 1, global_step)
                    if stop:
                        log.info(f"stopping after optimizer step {global_step} (run.stop_after_steps)")
                        return metrics
                if losses:
                    bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
            start = 0
            if dist_.world > 1:  # the summary counts every rank's broken videos
                total = torch.tensor([skipped], device=dist_.device)
                dist.all_reduce(total)
                skipped = int(total.item())
            metrics = {"epoch": epoch, "step": global_step, "loss": float(np.mean(losses)) if losses else float("nan"),
                       "lr": sched.get_last_lr()[0], "skipped": skipped}  # fmt: skip
            if val_loader is not None and (
                (epoch + 1) % cfg.run.eval_every_epochs == 0 or epoch + 1 == cfg.optim.epochs
            ):
                ev = evaluate(core, val_loader, tokens, len(names), dist_, amp)
                metrics.update({f"val_{k}": v for k, v in ev.items()})
            if dist_.main:
                log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
                if skipped:
                    log.info(f"epoch {epoch}: skipped {skipped} broken videos")
                _append_csv(metrics_path, metrics)
                _scalars(tb, global_step, {f"epoch/{k}": v for k, v in metrics.items() if k not in ("epoch", "step")})
                save_training_state(out / CHECKPOINT, core, opt, sched, scaler, epoch + 1, 0, global_step)
    finally:
        if tb is not None:
            tb.close()
    if dist_.main:
        save_checkpoint(core, out / "model")
        _plot(metrics_path, out / "curves.png")
    if dist_.world > 1:
        dist.barrier()
    return metrics


def _tensorboard(out: Path):
    """A TensorBoard writer under ``out/tensorboard`` when the tensorboard package is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _scalars(writer, step: int, values: dict) -> None:
    if writer is not None:
        for tag, v in values.items():
            if isinstance(v, (int, float)):
                writer.add_scalar(tag, v, step)


def _append_csv(path: Path, row: dict) -> None:
    """Append ``row``; a key the header lacks (validation columns first appearing after some
    epochs without evaluation) rewrites the file once with the widened header."""
    fields: list[str] = []
    if path.is_file():
        with open(path, newline="") as f:
            fields = next(csv.reader(f), [])
    new = [k for k in row if k not in fields]
    if fields and new:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields + new)
            w.writeheader()
            w.writerows(rows + [row])
        return
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields or list(row))
        if not fields:
            w.writeheader()
        w.writerow(row)


def _plot(metrics_csv: Path, png: Path) -> None:
    """Loss and validation accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv) as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [float(r["loss"]) for r in rows], marker="o")
    a.set(xlabel="epoch", ylabel="training loss")
    for key in ("val_top1", "val_top5"):
        if key in rows[0]:
            b.plot(epochs, [float(r[key] or "nan") for r in rows], marker="o", label=key)
    b.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    b.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--opts", nargs="*", default=[], help="KEY VALUE pairs, e.g. optim.lr 1e-5 data.batch_size 4")
    ap.add_argument("--resume", default=None, help="'auto' (the run's last checkpoint) or a path")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        metrics = train(load_config(args.config, args.opts), args.resume)
    except ConfigError as e:
        _fail(e, 2)
    print(f"done in {time.time() - t0:.0f} s: {metrics}")


def _fail(e: Exception, status: int) -> NoReturn:
    """A configuration that cannot run (status 2) or a run that cannot go on (status 1): one line."""
    print(f"claver.train: {e}", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
