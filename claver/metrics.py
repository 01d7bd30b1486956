"""Classification metrics over class probabilities."""

from __future__ import annotations

import torch


def accuracy(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """top-1, top-5 and mean class accuracy (classes absent from ``labels`` are left out of the mean).

    probs: ``(N, C)``; labels: ``(N,)``.
    """
    if probs.shape[0] == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mean_class": float("nan")}
    k = min(5, probs.shape[1])
    topk = probs.topk(k, dim=1).indices
    correct1 = topk[:, 0] == labels
    correct5 = (topk == labels[:, None]).any(1)
    per_class = []
    for c in range(num_classes):
        sel = labels == c
        if sel.any():
            per_class.append(correct1[sel].float().mean())
    return {
        "top1": correct1.float().mean().item(),
        "top5": correct5.float().mean().item(),
        "mean_class": torch.stack(per_class).mean().item(),
    }


def summarize_splits(results: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each metric over the official splits (HMDB-51 and UCF-101
    report the average of their three splits with its spread)."""
    if not results:
        raise ValueError("no split results to summarize")
    keys = [k for k in results[0] if all(k in r for r in results)]
    out = {}
    for k in keys:
        v = torch.tensor([float(r[k]) for r in results], dtype=torch.float64)
        out[k] = (v.mean().item(), v.std(unbiased=False).item() if len(results) > 1 else 0.0)
    return out
