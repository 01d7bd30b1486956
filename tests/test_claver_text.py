import pytest
import torch

from claver import text


def test_prompt_sets_templates_then_descriptions():
    sets = text.build_prompt_sets(
        ["run", "jump"], {"run": ["legs move fast", "a jog"], "jump": ["both feet leave the ground"]}, ["a {}.", "{}!"]
    )
    assert sets == [
        ["a run.", "a jump."],
        ["run!", "jump!"],
        ["legs move fast", "both feet leave the ground"],
        ["a jog", "both feet leave the ground"],
    ]


def test_prompt_set_errors():
    with pytest.raises(ValueError, match="no '\\{\\}'"):
        text.build_prompt_sets(["a"], templates=["no slot"])
    with pytest.raises(ValueError, match="unknown classes"):
        text.build_prompt_sets(["a"], {"b": ["x"]})
    with pytest.raises(ValueError, match="cannot sample k = 5 of 2"):
        text.sample_prompt_sets(torch.zeros(2, 3, 77, dtype=torch.long), 5)


def test_sampling_loss_and_averaging():
    toks = torch.arange(4)[:, None, None].expand(4, 3, 77)
    picked = text.sample_prompt_sets(toks, 2, torch.Generator().manual_seed(0))
    assert picked.shape == (2, 3, 77) and len(set(picked[:, 0, 0].tolist())) == 2
    logits = torch.randn(5, 2, 3)
    hard = text.prompt_set_loss(logits, torch.tensor([0, 1, 2, 0, 1]))
    soft = text.prompt_set_loss(logits, torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1]), 3).float())
    torch.testing.assert_close(hard, soft)
    probs = text.average_class_probs(logits)
    torch.testing.assert_close(probs.sum(-1), torch.ones(5))
