import pytest
import torch

from claver.metrics import accuracy, summarize_splits


def test_accuracy_top1_top5_mean_class():
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7]])
    labels = torch.tensor([0, 1, 1, 2])
    m = accuracy(probs, labels, 3)
    assert m["top1"] == 0.75 and m["top5"] == 1.0
    assert m["mean_class"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)


def test_summarize_three_splits():
    s = summarize_splits([{"top1": 0.7}, {"top1": 0.8}, {"top1": 0.9}])
    assert s["top1"][0] == pytest.approx(0.8) and s["top1"][1] == pytest.approx((2 / 300) ** 0.5)
    with pytest.raises(ValueError, match="no split results"):
        summarize_splits([])
