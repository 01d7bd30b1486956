"""Train CLAVER.

    python -m claver.train --config configs/X.yaml [--opts KEY VALUE ...] [--resume auto|PATH | --overwrite]
    torchrun --nproc_per_node 8 --max-restarts 3 -m claver.train --config ... --resume auto   # DDP

Each optimizer step sees ``optim.effective_batch`` clips (gradient accumulation over
``data.batch_size`` x world size); K of the A prompt sets are sampled per step. A checkpoint
(model, optimizer, scheduler, scaler, epoch, step, the epoch's running sums) is written
atomically at the end of every epoch and every ``run.save_every_steps`` optimizer steps;
``--resume auto`` continues from the newest one exactly where it stopped: every random draw of a
step (augmentation, mixup/cutmix, prompt sets, stochastic depth) follows from the seed, epoch,
batch and rank, and the steps redone after a crash replace their rows in ``steps.csv``. A torchrun
restart resumes by itself. An existing run in ``run.out`` is never started over without
``--overwrite``.

A run fails (status 1, one line, no model written) when an epoch had no usable clip or more than
``run.max_skipped`` of its clips skipped, when the loss is not finite for
``run.max_nonfinite_steps`` consecutive optimizer steps, or when a checkpoint cannot be written; a
configuration that cannot run is one line and status 2.
"""

from __future__ import annotations

if not __package__:  # run by its path (python claver/train.py): no package for the imports below
    import _script

    _script.run_as_module(__file__)

import argparse
import contextlib
import csv
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from .data.transforms import RawClips, finish, mix_batch
from .engine import evaluate, init_distributed, make_loader, prompt_tokens, read_training_state
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


class RunError(RuntimeError):
    """A run that cannot go on; its message says why in one line (the command exits 1 with it)."""


# What a run writes into its folder: a folder holding any of these holds a run.
RUN_FILES = (CHECKPOINT, "config.json", "steps.csv", "metrics.csv", "log.txt", "model.safetensors", "model.json",
             "curves.png", "tensorboard", "last.tmp", f"{CHECKPOINT}.failed")  # fmt: skip
EMPTY_TALLY = {"loss_sum": 0.0, "losses": 0, "clips": 0, "skipped": 0, "nonfinite_steps": 0}


def free_bytes(folder: Path) -> int:
    """Free space in ``folder``'s file system."""
    return shutil.disk_usage(folder).free


def _nbytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_nbytes(v) for v in obj)
    return 0


def save_training_state(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` so that a crash at any moment leaves the previous checkpoint
    whole: into a temporary file, flushed to disk, then renamed over it. The old checkpoint
    therefore still takes its space while the new one is written; the free space is checked for
    the new one first. A failed write removes the temporary file; :class:`RunError` names the path."""
    need = _nbytes(state) * 101 // 100 + 2**20  # the tensors, and room for the archive's structure
    free = free_bytes(path.parent)
    if free < need:
        raise RunError(f"not enough space in {path.parent} for the checkpoint: {need} bytes needed, {free} free")
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise RunError(f"could not write the checkpoint {tmp}: {e.strerror or e}") from None


def _checkpoint_to_resume(out: Path, resume: str | None, overwrite: bool) -> Path | None:
    """The training state to continue from, or None for a fresh run; refuses to start a fresh run
    over an existing one unless ``overwrite``."""
    if resume is None:
        held = [n for n in RUN_FILES if (out / n).exists()]
        if held and not overwrite:
            raise ConfigError(
                f"{out} already holds a run ({', '.join(held)}): pass --resume auto to continue it, "
                "set a new run.out, or pass --overwrite to replace it"
            )
        return None
    if overwrite:
        raise ConfigError("--overwrite starts the run over: it cannot be combined with --resume")
    if resume == "auto":
        return out / CHECKPOINT if (out / CHECKPOINT).is_file() else None
    if not Path(resume).is_file():
        raise ConfigError(f"--resume: no checkpoint at {resume}")
    return Path(resume)


def _read_state(ckpt: Path) -> dict:
    """The training state in ``ckpt``, or a ConfigError saying what the file is instead."""
    try:
        return read_training_state(ckpt)
    except ConfigError as e:
        start_from = f", or --opts model.pretrained {ckpt} to start a new run from its weights"
        raise ConfigError(
            f"--resume: {e}; pass a run's {CHECKPOINT} or --resume auto"
            + (start_from if ckpt.suffix == ".safetensors" else "")
        ) from None


def _load_model_state(core: torch.nn.Module, state: dict, ckpt: Path) -> None:
    """The weights of ``state`` into ``core``, or one line naming what differs."""
    for key, saved in state.get("architecture", {}).items():
        if getattr(core.config, key) != saved:
            raise ConfigError(
                f"--resume {ckpt}: model.{key} is {saved!r} in the checkpoint but {getattr(core.config, key)!r} "
                "in the configuration"
            )
    try:
        core.load_state_dict(state["model"])
    except RuntimeError as e:  # a state from before the architecture was recorded
        detail = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e))
        raise ConfigError(f"--resume {ckpt}: its weights do not fit the configured model ({detail})") from None


def _failure_marker(out: Path) -> Path:
    return out / f"{CHECKPOINT}.failed"


def _check_not_looping(out: Path) -> None:
    """A checkpoint that failed twice fails again on a restart after redoing every step before it:
    refuse to start instead, until the cause is fixed."""
    marker = _failure_marker(out)
    if marker.is_file():
        step, count, reason = marker.read_text().split(" ", 2)
        if int(count) >= 2:
            raise RunError(f"the checkpoint of optimizer step {step} failed twice ({reason.strip()}); "
                           f"fix that, then delete {marker}")  # fmt: skip


def _note_failure(out: Path, step: int, error: RunError) -> None:
    """Counts the failures of the checkpoint of ``step`` (best effort: the disk may be full)."""
    marker = _failure_marker(out)
    with contextlib.suppress(OSError, ValueError):
        before, count, _ = marker.read_text().split(" ", 2) if marker.is_file() else ("", "0", "")
        count = int(count) + 1 if before == str(step) else 1
        marker.write_text(f"{step} {count} {error}\n")


def _keep_rows(path: Path, keep) -> None:
    """Rewrite the CSV ``path`` with only the rows ``keep(row)`` accepts: the rows of steps a
    resumed run redoes are written again."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames or []
    kept = [r for r in rows if keep(r)]
    if len(kept) < len(rows):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(kept)


def _pool(tally: dict, dist_) -> None:
    """Sums the clip counts of all ranks into rank 0's tally (the others restart from zero), so
    that the one tally a checkpoint saves counts every rank's clips."""
    if dist_.world == 1:
        return
    counts = torch.tensor([tally["clips"], tally["skipped"]], device=dist_.device)
    dist.all_reduce(counts)
    tally["clips"], tally["skipped"] = (int(c) for c in counts.tolist()) if dist_.main else (0, 0)


def _check_epoch(epoch: int, tally: dict, first_bad, max_skipped: float) -> None:
    """An epoch whose clips were all, or mostly, skipped has not trained the model."""
    clips, skipped = tally["clips"], tally["skipped"]
    example = f"; e.g. {first_bad.path}: {first_bad.reason}" if first_bad is not None else ""
    if clips == skipped:
        raise RunError(f"epoch {epoch}: no usable clip, all {clips} skipped{example}")
    if skipped > max_skipped * clips:
        raise RunError(f"epoch {epoch}: {skipped} of {clips} clips skipped, more than run.max_skipped "
                       f"({max_skipped:g}) of them{example}")  # fmt: skip


def train(cfg: TrainConfig, resume: str | None = None, overwrite: bool = False) -> dict:
    """Run training (and per-epoch evaluation); returns the last evaluation's metrics.

    ``resume``: ``"auto"`` (the run's own checkpoint, if any) or a training state's path; a
    torchrun restart resumes ``"auto"`` when none is given. Without it, an existing run in
    ``run.out`` is a :class:`ConfigError` unless ``overwrite``, which deletes that run's files.
    Nothing is written into ``run.out`` before the checkpoint to resume has been checked against
    the configuration. A run that cannot go on raises :class:`RunError` and writes no model."""
    dist_ = init_distributed()
    out = Path(cfg.run.out)
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0:
        # torchrun restarted the group: continue what this launch started, never start it over
        resume = "auto" if resume is None or (out / CHECKPOINT).is_file() else resume
        overwrite = False
    ckpt = _checkpoint_to_resume(out, resume, overwrite)
    state = _read_state(ckpt) if ckpt is not None else None
    if not overwrite:
        _check_not_looping(out)
    torch.manual_seed(cfg.run.seed + dist_.rank)

    names = class_names(cfg.data.labels)
    m = cfg.model
    try:
        model = create_model(pretrained=m.pretrained, **m.architecture()).to(dist_.device)
    except (ValueError, FileNotFoundError) as e:  # the arch or the weights to start from
        raise ConfigError(f"model: {e}") from None
    if state is not None:
        _load_model_state(model, state, ckpt)
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

    epoch0, start, global_step, tally = 0, 0, 0, dict(EMPTY_TALLY)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        epoch0, start, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        if dist_.main:
            tally.update(state.get("tally", {}))
    if dist_.world > 1:
        dist.barrier()  # every rank has checked the folder before rank 0 writes into it
    metrics_path = out / "metrics.csv"
    if dist_.main:
        if overwrite:
            for path in (out / name for name in RUN_FILES):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
            _keep_rows(out / "steps.csv", lambda r: int(r["step"]) <= global_step)
            _keep_rows(metrics_path, lambda r: int(r["epoch"]) < epoch0)
        except OSError as e:
            raise RunError(f"cannot write the run into {out}: {e.strerror or e}") from None
    setup_logging(out, dist_.main)
    if state is not None:
        log.info(f"resumed from {ckpt}: epoch {epoch0}, batch {start}, optimizer step {global_step}")

    def checkpoint(epoch: int, batch: int) -> None:
        _pool(tally, dist_)
        if not dist_.main:
            return
        state = {
            "model": core.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(), "epoch": epoch, "step_in_epoch": batch, "global_step": global_step,
            "tally": dict(tally), "architecture": dataclasses.asdict(core.config),
        }  # fmt: skip
        try:
            save_training_state(out / CHECKPOINT, state)
        except RunError as e:
            _note_failure(out, global_step, e)
            raise
        _failure_marker(out).unlink(missing_ok=True)

    metrics = {}
    log.info(f"{len(names)} classes, {tokens.shape[0]} prompt sets, {batches} batches per epoch on each rank, "
             f"accumulating {accumulate} batches per optimizer step")  # fmt: skip
    tb = _tensorboard(out) if dist_.main else None
    try:
        for epoch in range(epoch0, cfg.optim.epochs):
            sampler.set_epoch(epoch, start * cfg.data.batch_size)  # start: batches already done
            train_loader.dataset.set_epoch(epoch)
            model.train()
            step_losses, first_bad = [], None
            bar = tqdm(train_loader, desc=f"epoch {epoch}", disable=not dist_.main, initial=start,
                       total=batches, dynamic_ncols=True)  # fmt: skip
            for i, (clips, labels, bad) in enumerate(bar, start=start):
                tally["clips"] += len(bad) + (0 if clips is None else len(labels))
                tally["skipped"] += len(bad)
                first_bad = first_bad or next(iter(bad), None)
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
                    # every random draw of the micro-batch comes from (seed, epoch, batch, rank), so
                    # that a resumed run draws what the uninterrupted one did
                    rng = np.random.default_rng([cfg.run.seed, epoch, i, dist_.rank])
                    clips, labels = finish(clips, core.config.normalization, dist_.device), labels.to(dist_.device)
                    if weight and (cfg.optim.mixup > 0 or cfg.optim.cutmix > 0):
                        clips, target = mix_batch(clips, labels, len(names), cfg.optim.mixup, cfg.optim.cutmix,
                                                  cfg.optim.smoothing, rng=rng)  # fmt: skip
                    else:
                        target = labels
                    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
                    torch.manual_seed(int(rng.integers(2**31)))  # stochastic depth
                    k = min(cfg.optim.prompt_sets, tokens.shape[0])
                    # DDP: all-reduce the gradients once per optimizer step, on its last micro-batch
                    local = model.no_sync() if dist_.world > 1 and not sync else contextlib.nullcontext()
                    with local:
                        with torch.autocast(dist_.device.type, dtype=amp, enabled=amp is not None):
                            logits = model(clips, sample_prompt_sets(tokens, k, g))
                        loss = prompt_set_loss(logits.float(), target)
                        scaler.scale(loss * weight / accumulate).backward()
                    if weight:
                        step_losses.append(loss.item())
                        tally["loss_sum"] += step_losses[-1]
                        tally["losses"] += 1
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
                    step_loss = float(np.mean(step_losses)) if step_losses else float("nan")
                    if dist_.main:
                        _append_csv(out / "steps.csv", {"step": global_step, "loss": step_loss})
                        _scalars(tb, global_step, {"train/loss": step_loss, "train/lr": lr})
                    finite = not step_losses or math.isfinite(step_loss)  # a step of skipped clips only has none
                    tally["nonfinite_steps"] = 0 if finite else tally["nonfinite_steps"] + 1
                    if tally["nonfinite_steps"] >= cfg.run.max_nonfinite_steps:
                        raise RunError(f"the loss was not finite for {tally['nonfinite_steps']} consecutive optimizer "
                                       f"steps (up to step {global_step}; run.max_nonfinite_steps)")  # fmt: skip
                    step_losses = []
                    stop = cfg.run.stop_after_steps and global_step >= cfg.run.stop_after_steps
                    if stop or (cfg.run.save_every_steps and global_step % cfg.run.save_every_steps == 0):
                        checkpoint(epoch, i + 1)
                    if stop:
                        log.info(f"stopping after optimizer step {global_step} (run.stop_after_steps)")
                        return metrics
                    bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
            start = 0
            _pool(tally, dist_)
            if dist_.world > 1:  # every rank sees the totals, and fails alike
                counts = torch.tensor([tally["clips"], tally["skipped"]], device=dist_.device)
                dist.broadcast(counts, 0)
                tally["clips"], tally["skipped"] = (int(c) for c in counts.tolist())
            _check_epoch(epoch, tally, first_bad, cfg.run.max_skipped)
            loss = tally["loss_sum"] / tally["losses"] if tally["losses"] else float("nan")
            metrics = {"epoch": epoch, "step": global_step, "loss": loss, "lr": sched.get_last_lr()[0],
                       "skipped": tally["skipped"]}  # fmt: skip
            if val_loader is not None and (
                (epoch + 1) % cfg.run.eval_every_epochs == 0 or epoch + 1 == cfg.optim.epochs
            ):
                ev = evaluate(core, val_loader, tokens, len(names), dist_, amp)
                if not ev["videos"]:
                    raise RunError(f"epoch {epoch}: no usable validation video, all {ev['skipped']} skipped")
                metrics.update({f"val_{k}": v for k, v in ev.items()})
            if dist_.main:
                log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
                if tally["skipped"]:
                    log.info(f"epoch {epoch}: skipped {tally['skipped']} broken videos")
                _append_csv(metrics_path, metrics)
                _scalars(tb, global_step, {f"epoch/{k}": v for k, v in metrics.items() if k not in ("epoch", "step")})
            tally = dict(EMPTY_TALLY, nonfinite_steps=tally["nonfinite_steps"])
            checkpoint(epoch + 1, 0)
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
    ap.add_argument("--overwrite", action="store_true", help="start over in a run.out that holds a run, deleting it")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        metrics = train(load_config(args.config, args.opts), args.resume, args.overwrite)
    except ConfigError as e:
        _fail(e, 2)
    except RunError as e:
        _fail(e, 1)
    print(f"done in {time.time() - t0:.0f} s: {metrics}")


def _fail(e: Exception, status: int) -> NoReturn:
    """A configuration that cannot run (status 2) or a run that cannot go on (status 1): one line."""
    print(f"claver.train: {e}", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
