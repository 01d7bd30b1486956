import pytest
import torch

import claver
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


def test_prompt_tokens_describe_the_classes_the_file_knows():
    """hmdb51's file describes "brush hair", not "juggling balls"; the other 50 HMDB-51 classes it
    describes are left out. A file describing none of the list is an error."""
    tokenizer = claver.get_tokenizer("claver-tiny")
    described = claver.prompts.load("hmdb51").by_name()["brush hair"]
    toks = text.prompt_tokens(["brush hair", "juggling balls"], "hmdb51", tokenizer)
    templates = len(text.TEMPLATES)
    assert toks.shape == (templates + len(described), 2, 77)
    assert torch.equal(toks[templates:, 0], tokenizer(described))
    assert torch.equal(toks[templates:, 1], tokenizer(["juggling balls"] * len(described)))
    assert torch.equal(toks[:templates], text.prompt_tokens(["brush hair", "juggling balls"], None, tokenizer))
    with pytest.raises(
        ValueError, match="prompt file 'hmdb51' describes none of the classes 'juggling balls', 'surfing'"
    ):
        text.prompt_tokens(["juggling balls", "surfing"], "hmdb51", tokenizer)
