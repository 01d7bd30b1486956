"""The CLAVER model: equivalences with open_clip and nn.MultiheadAttention, checkpoints, text branch."""

import copy

import open_clip
import pytest
import torch
from torch import nn

import claver
from claver import ClaverConfig, TemporalBlock
from claver.model import CLAVER
from kron_attn import masks

TINY = "claver-tiny"


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


def tiny(frames=3, **kw):
    torch.manual_seed(0)
    return claver.create_model(TINY, frames=frames, **kw).eval()


def tokens(names):
    return open_clip.get_tokenizer(TINY)(names)


@pytest.mark.parametrize("arch,size", [(TINY, 32), ("ViT-B-32", 224)])
def test_bypassed_temporal_blocks_give_open_clip_image_features(arch, size):
    torch.manual_seed(0)
    clip = open_clip.create_model(arch).eval()
    ref = copy.deepcopy(clip)
    model = CLAVER(clip, ClaverConfig(arch, frames=2)).eval()
    x = torch.randn(1, 2, 3, size, size)
    with torch.no_grad():
        ours = model.video.encode_frames(x, temporal=False)
        theirs = ref.encode_image(x.flatten(0, 1)).view(1, 2, -1)
    assert rel_err(ours, theirs) <= 1e-5


@pytest.mark.parametrize("layout", ["kmt", "kmct"])
def test_temporal_block_equals_multihead_attention_with_paper_mask(layout):
    torch.manual_seed(0)
    t, l, w, heads = 4, 10, 64, 4
    blk = TemporalBlock(w, heads, t, layout).eval()
    blk.init_weights(identity=False)
    mha = nn.MultiheadAttention(w, heads, batch_first=True)
    mha.load_state_dict(blk.attn.state_dict())
    x = torch.randn(2, t * l, w)
    mask = masks.additive_mask(t, l, layout)
    with torch.no_grad():
        h = blk.ln_1(x)
        y = x + mha(h, h, h, attn_mask=mask, need_weights=False)[0]
        expected = y + blk.mlp(blk.ln_2(y))
        assert rel_err(blk(x), expected) <= 1e-5


def test_identity_init_keeps_image_features():
    model = tiny(temporal_init="identity")
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        per_frame = model.video.encode_frames(x, temporal=False).mean(1)
        torch.testing.assert_close(model.encode_video(x), per_frame, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("init, lo, hi", [("paper", 0.01, 0.03), ("scratch", 0.5, 1.5)])
def test_temporal_embedding_scale(init, lo, hi):
    torch.manual_seed(0)
    std = tiny(temporal_init=init).video.temporal.temporal_embedding.std().item()
    assert lo < std < hi


def test_shapes_and_prompt_set_logits():
    model = tiny()
    x = torch.randn(2, 3, 3, 32, 32)
    toks = tokens(["jumping", "running", "waving"])
    assert model.encode_video(x).shape == (2, 64)
    assert model.encode_text(toks).shape == (3, 64)
    assert model(x, toks).shape == (2, 3)
    assert model(x, torch.stack([toks, toks])).shape == (2, 2, 3)


def test_frozen_text_features_are_cached():
    model = tiny()
    model.freeze_text()
    toks = tokens(["a", "b"])
    first = model.encode_text(toks)
    assert model.encode_text(toks) is first
    assert not first.requires_grad
    assert model.text.logit_scale.requires_grad
    assert not any(p.requires_grad for n, p in model.text.named_parameters() if n != "logit_scale")
    model.freeze_text(False)
    assert model.encode_text(toks).requires_grad


def test_save_then_load_reproduces_logits_exactly(tmp_path):
    model = tiny(layout="kmct")
    x, toks = torch.randn(2, 3, 3, 32, 32), tokens(["x", "y"])
    path = claver.save_checkpoint(model, tmp_path / "ckpt")
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    loaded = claver.create_model(TINY, pretrained=path, frames=3, layout="kmct").eval()
    with torch.no_grad():
        assert torch.equal(model(x, toks), loaded(x, toks))


def test_checkpoint_mismatches_fail_clearly(tmp_path):
    path = claver.save_checkpoint(tiny(frames=4), tmp_path / "ckpt")
    with pytest.raises(ValueError, match="made for arch 'claver-tiny', not 'claver-small'"):
        claver.create_model("claver-small", pretrained=path, frames=4)
    with pytest.raises(ValueError, match="made for 4 frames, not 8; pass interpolate_frames=True"):
        claver.create_model(TINY, pretrained=path, frames=8)
    model = claver.create_model(TINY, pretrained=path, frames=8, interpolate_frames=True)
    assert model.video.temporal.temporal_embedding.shape[0] == 8 and model.frames == 8
    model(torch.randn(1, 8, 3, 32, 32), tokens(["a"]))
    with pytest.raises(FileNotFoundError, match="not found"):
        claver.load_checkpoint(tmp_path / "missing")


def test_image_clip_checkpoints_load_without_pickle(tmp_path):
    torch.manual_seed(1)
    clip = open_clip.create_model(TINY)
    torch.save({"state_dict": {"module." + k: v for k, v in clip.state_dict().items()}}, tmp_path / "clip.pt")
    model = claver.create_model(TINY, pretrained=tmp_path / "clip.pt", frames=2)
    torch.testing.assert_close(model.video.visual.conv1.weight, clip.visual.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.text.token_embedding.weight, clip.token_embedding.weight, rtol=0, atol=0)


def test_openai_weights_offline_error_says_what_to_do():
    with pytest.raises(RuntimeError, match="pass pretrained='/path/to/checkpoint'"):
        claver.create_model(TINY, pretrained="openai")


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown arch 'ViT-Q-99'"):
        claver.create_model("ViT-Q-99")
    with pytest.raises(ValueError, match="temporal_init"):
        claver.create_model(TINY, temporal_init="zeros")


def test_training_options_run():
    model = claver.create_model(TINY, frames=3, drop_path=0.1).train()
    model.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 3, 32, 32)
    model(x, tokens(["a", "b"])).sum().backward()
    assert model.video.temporal.temporal_embedding.grad is not None


def test_torchscript_archive_loads_with_quick_gelu(tmp_path):
    """OpenAI's checkpoints are TorchScript archives: read with torch.jit.load, QuickGELU switched on."""
    torch.manual_seed(2)
    clip = open_clip.create_model(TINY, force_quick_gelu=True).eval()
    with pytest.warns(FutureWarning):  # torch.jit.script is deprecated, but OpenAI's files are scripted
        torch.jit.script(clip).save(str(tmp_path / "openai.pt"))
    model = claver.create_model(TINY, pretrained=tmp_path / "openai.pt", frames=2).eval()
    x = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        ours = model.video.encode_frames(x, temporal=False)
        theirs = clip.encode_image(x.flatten(0, 1)).view(1, 2, -1)
    assert rel_err(ours, theirs) <= 1e-5
