"""The CLAVER model: equivalences with open_clip, nn.MultiheadAttention and the released code,
checkpoints, the text branch."""

import copy
import json
import math

import open_clip
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import claver
from claver import ClaverConfig, TemporalBlock
from claver.factory import _build_clip
from claver.model import CLAVER
from claver.video import release_drop_rates
from kron_attn import masks

TINY = "claver-tiny"


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


def tiny(frames=3, **kw):
    torch.manual_seed(0)
    return claver.create_model(TINY, frames=frames, **kw).eval()


def tokens(names):
    return claver.get_tokenizer(TINY)(names)


def is_quick_gelu(act):
    return type(act).__name__ == "QuickGELU"


def mlp_activations(model):
    """Every MLP activation of the model: CLIP image blocks, text blocks, temporal blocks."""
    blocks = [*model.video.visual.transformer.resblocks, *model.text.transformer.resblocks]
    return [b.mlp.gelu for b in blocks] + [b.mlp.gelu for b in model.video.temporal.resblocks]


@pytest.mark.parametrize("arch,size", [(TINY, 32), ("ViT-B-32", 224)])
def test_bypassed_temporal_blocks_give_open_clip_image_features(arch, size):
    torch.manual_seed(0)
    clip = _build_clip(arch, quick_gelu=True).eval()
    ref = copy.deepcopy(clip)
    model = CLAVER(clip, ClaverConfig(arch, frames=2, quick_gelu=True)).eval()
    x = torch.randn(1, 2, 3, size, size)
    with torch.no_grad():
        ours = model.video.encode_frames(x, temporal=False)
        theirs = ref.encode_image(x.flatten(0, 1)).view(1, 2, -1)
    assert rel_err(ours, theirs) <= 1e-5


@pytest.mark.parametrize("arch,size", [(TINY, 32), ("ViT-B-32", 224)])
def test_frame_tokens_through_open_clips_public_api_are_its_embedding_and_transformer(arch, size):
    """forward_intermediates' last layer, rejoined from its class and patch tokens, is bit for bit
    what the private ``_embeds`` followed by the transformer gives, and so are its gradients,
    with and without gradient checkpointing."""
    torch.manual_seed(0)
    model = claver.create_model(arch, frames=2).train()
    visual = model.video.visual
    x = torch.randn(2, 2, 3, size, size, requires_grad=True)
    for checkpointing in (False, True):
        model.set_grad_checkpointing(checkpointing)
        ours = model.video.frame_tokens(x)
        old = visual.transformer(visual._embeds(x.flatten(0, 1))).view_as(ours)
        assert torch.equal(ours, old)
        (g_ours,) = torch.autograd.grad(ours.square().sum(), x)
        (g_old,) = torch.autograd.grad(old.square().sum(), x)
        assert torch.equal(g_ours, g_old)


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
        per_frame = F.normalize(model.video.encode_frames(x, temporal=False), dim=-1).mean(1)
        torch.testing.assert_close(model.encode_video(x), per_frame, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("init, lo, hi", [("release", 0.01, 0.03), ("trunc_normal", 0.01, 0.03), ("scratch", 0.5, 1.5)])
def test_temporal_embedding_scale(init, lo, hi):
    torch.manual_seed(0)
    emb = tiny(temporal_init=init).video.temporal.temporal_embedding
    assert lo < emb.std().item() < hi and emb.abs().max() <= 2.0  # truncated at +-2, as timm's trunc_normal_


def test_logits_are_the_released_formula():
    """The release: L2-normalise each frame's feature, average over frames without renormalising,
    then exp(logit_scale) <mean, unit text>; built here from that formula in float64."""
    model = tiny(temporal_init="trunc_normal").double()
    x, toks = torch.randn(2, 3, 3, 32, 32, dtype=torch.float64), tokens(["jumping", "running", "waving"])
    with torch.no_grad():
        frames = model.video.encode_frames(x)  # (B, T, E): CLIP and the temporal blocks
        video = (frames / frames.norm(dim=-1, keepdim=True)).mean(1)
        text = model.text.encode_text(toks)
        text = text / text.norm(dim=-1, keepdim=True)
        expected = model.text.logit_scale.exp() * video @ text.T
        torch.testing.assert_close(model(x, toks), expected, rtol=1e-12, atol=1e-12)
        assert (model.encode_video(x).norm(dim=-1) < 1).all()  # the mean of unit vectors, not renormalised


def test_class_probs_are_the_models_score_in_float32_averaged_over_prompt_sets():
    model = tiny()
    x = torch.randn(2, 3, 3, 32, 32)
    sets = torch.stack([tokens([f"{w} jumping", f"{w} running", f"{w} waving"]) for w in ("a", "the")])  # (2, 3, 77)
    with torch.no_grad():
        video, text = model.encode_video(x), model.encode_text(sets, normalize=True)
        probs = model.class_probs(video.bfloat16(), text.bfloat16())
        assert probs.dtype == torch.float32
        expected = claver.text.average_class_probs(model.score(video.bfloat16().float(), text.bfloat16().float()))
        torch.testing.assert_close(probs, expected, rtol=0, atol=0)
        torch.testing.assert_close(model.score(video, text), model(x, sets), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"prompt-set text features \(A, C, E\)"):
        model.class_probs(video, text[0])


@pytest.mark.parametrize("arch,layers", [("claver-small", 6), ("ViT-B-32", 12)])
def test_stochastic_depth_rates_are_the_released_ones(arch, layers):
    """linspace(0, p, layers) over the CLIP blocks; the temporal blocks take the first layers // 3."""
    model = claver.create_model(arch, frames=2, drop_path=0.2)
    want = torch.linspace(0, 0.2, layers).tolist()
    assert [b.drop_path_rate for b in model.video.visual.transformer.resblocks] == want
    assert [b.drop_path.p for b in model.video.temporal.resblocks] == want[: layers // 3]
    assert release_drop_rates(0.2, layers, layers // 3) == (want, want[: layers // 3])
    only_temporal = claver.create_model(arch, frames=2, drop_path=0.2, drop_path_scheme="temporal")
    clip_blocks = only_temporal.video.visual.transformer.resblocks
    assert not any(b.ls_1._forward_hooks or b.ls_2._forward_hooks for b in clip_blocks)
    rates = [b.drop_path.p for b in only_temporal.video.temporal.resblocks]
    assert rates[0] == 0.0 and math.isclose(rates[-1], 0.2)


def test_clip_block_stochastic_depth_drops_whole_samples_in_training_only():
    model = claver.create_model(TINY, frames=2, drop_path=0.5)
    block = model.video.visual.transformer.resblocks[-1]  # rate 0.5
    ones = torch.ones(64, 5, 64)
    block.train()
    torch.manual_seed(0)
    out = block.ls_2(ones)
    assert set(out.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - 0.5)
    assert (out.flatten(1) == out.flatten(1)[:, :1]).all()  # whole samples
    block.eval()
    assert torch.equal(block.ls_2(ones), ones)


def test_release_init_is_pytorch_default_for_the_temporal_blocks():
    """The release never calls its init_weights: nn.MultiheadAttention's and nn.Linear's own
    initialisation (xavier-uniform in_proj and zero attention biases; kaiming-uniform Linear
    weights with uniform biases), as opposed to the truncated-normal scheme."""
    torch.manual_seed(0)
    blk = claver.create_model("claver-small", frames=2).video.temporal.resblocks[0]
    w = blk.attn.in_proj_weight
    fan_in, fan_out = w.shape[1], w.shape[0]
    xavier = math.sqrt(6 / (fan_in + fan_out))
    assert w.abs().max() <= xavier and w.abs().max() > 0.95 * xavier
    assert torch.count_nonzero(blk.attn.in_proj_bias) == 0 and torch.count_nonzero(blk.attn.out_proj.bias) == 0
    for lin in (blk.attn.out_proj, blk.mlp.c_fc, blk.mlp.c_proj):
        bound = 1 / math.sqrt(lin.weight.shape[1])  # kaiming_uniform(a=sqrt(5)) and the bias bound
        assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.95 * bound
    assert torch.count_nonzero(blk.mlp.c_fc.bias) > 0  # uniform, not zero
    trunc = claver.create_model("claver-small", frames=2, temporal_init="trunc_normal").video.temporal.resblocks[0]
    assert torch.count_nonzero(trunc.mlp.c_fc.bias) == 0 and trunc.mlp.c_fc.weight.std() < 0.03


def test_shapes_and_prompt_set_logits():
    model = tiny()
    x = torch.randn(2, 3, 3, 32, 32)
    toks = tokens(["jumping", "running", "waving"])
    assert model.encode_video(x).shape == (2, 64)
    assert model.encode_text(toks).shape == (3, 64)
    assert model(x, toks).shape == (2, 3)
    assert model(x, torch.stack([toks, toks])).shape == (2, 2, 3)


@pytest.mark.parametrize("arch", [TINY, "ViT-B-32"])
def test_text_encoded_up_to_each_end_token_equals_the_full_context(arch, monkeypatch):
    monkeypatch.setattr(claver.model, "TEXT_CHUNK", 2)  # several chunks, of different lengths
    torch.manual_seed(0)
    model = claver.create_model(arch, frames=2).double()
    long = " ".join(["word"] * 100)  # cut by the tokenizer: its end token is the last position
    for names in (["jump"], ["a person doing a cartwheel on the grass", "a", "run fast", long, "b c"]):
        toks = claver.get_tokenizer(arch)(names)
        ours = model.encode_text(toks)
        full = model.text.encode_text(toks)
        torch.testing.assert_close(ours, full, rtol=1e-12, atol=1e-12)
        (g_ours,) = torch.autograd.grad(ours.square().sum(), model.text.token_embedding.weight)
        (g_full,) = torch.autograd.grad(full.square().sum(), model.text.token_embedding.weight)
        torch.testing.assert_close(g_ours, g_full, rtol=1e-10, atol=1e-12)


def test_frozen_text_features_are_cached_once_per_prompt_set():
    model = tiny()
    model.freeze_text()
    toks = tokens(["a", "b"])
    first = model.encode_text(toks)
    torch.testing.assert_close(model.encode_text(toks), first, rtol=0, atol=0)
    assert not first.requires_grad
    sets = torch.stack([tokens([f"{w} a", f"{w} b"]) for w in ("one", "two", "three", "four")])  # (A=4, C, 77)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):  # sampled subsets of the sets, as in training
        pick = sets[torch.randperm(4, generator=g)[:2]]
        torch.testing.assert_close(
            model.encode_text(pick), model.text.encode_text(pick.flatten(0, 1)).unflatten(0, (2, 2))
        )
    assert len(model._text_cache) == 5  # the four sets and the first one, each once
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
    clip = _build_clip(TINY, quick_gelu=True)
    torch.save({"state_dict": {"module." + k: v for k, v in clip.state_dict().items()}}, tmp_path / "clip.pt")
    model = claver.create_model(TINY, pretrained=tmp_path / "clip.pt", frames=2)
    torch.testing.assert_close(model.video.visual.conv1.weight, clip.visual.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.text.token_embedding.weight, clip.token_embedding.weight, rtol=0, atol=0)


def test_failed_download_says_what_to_do(monkeypatch):
    def offline(cfg, *args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(open_clip, "download_pretrained", offline)
    with pytest.raises(RuntimeError, match="could not fetch the 'openai' weights of ViT-B-32.*pass pretrained='/path"):
        claver.create_model("ViT-B-32", pretrained="openai")


def test_pretrained_neither_file_nor_tag():
    with pytest.raises(FileNotFoundError, match="neither a file nor a weight tag of ViT-B-32; open_clip tags .*openai"):
        claver.create_model("ViT-B-32", pretrained="nonexistent.pt")


def test_unknown_and_unsuitable_archs():
    with pytest.raises(ValueError, match="unknown arch 'ViT-Q-99'"):
        claver.create_model("ViT-Q-99")
    with pytest.raises(ValueError, match="arch 'RN50' cannot be used: its image tower is a ResNet"):
        claver.create_model("RN50")
    assert "RN50" not in claver.list_archs() and {TINY, "ViT-B-16"} <= set(claver.list_archs())
    assert TINY not in open_clip.list_models()  # our configs stay out of open_clip's registry
    with pytest.raises(ValueError, match="temporal_init"):
        claver.create_model(TINY, temporal_init="zeros")


def test_training_options_run():
    model = claver.create_model(TINY, frames=3, drop_path=0.1).train()
    model.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 3, 32, 32)
    model(x, tokens(["a", "b"])).sum().backward()
    assert model.video.temporal.temporal_embedding.grad is not None


def test_openai_tag_runs_with_quick_gelu_through_save_and_load(tmp_path, monkeypatch):
    """ViT-B-32's config has no quick_gelu; its "openai" weights (here a local OpenAI-format file
    standing in for the download, offline) need QuickGELU in every CLIP block, and keep it."""
    torch.manual_seed(3)
    weights = tmp_path / "openai-vit-b-32.pt"
    torch.save(_build_clip("ViT-B-32", quick_gelu=True).state_dict(), weights)
    monkeypatch.setattr(open_clip, "download_pretrained", lambda cfg, *a, **k: str(weights))
    assert not open_clip.get_model_config("ViT-B-32").get("quick_gelu", False)
    model = claver.create_model("ViT-B-32", pretrained="openai", frames=2).eval()
    assert model.config.quick_gelu and all(is_quick_gelu(a) for a in mlp_activations(model))
    path = claver.save_checkpoint(model, tmp_path / "b32")
    assert json.loads(path.with_suffix(".json").read_text())["claver"]["quick_gelu"] is True
    loaded = claver.load_checkpoint(path).eval()
    assert all(is_quick_gelu(a) for a in mlp_activations(loaded))
    x, toks = torch.randn(1, 2, 3, 224, 224), claver.get_tokenizer("ViT-B-32")(["a", "b"])
    with torch.no_grad():
        assert torch.equal(model(x, toks), loaded(x, toks))
    gelu = claver.create_model("ViT-B-32", pretrained="openai", frames=2, quick_gelu=False)  # the override
    clip_activations = mlp_activations(gelu)[: -len(gelu.video.temporal.resblocks)]  # temporal: QuickGELU always
    assert not any(is_quick_gelu(a) for a in clip_activations)


def test_format_1_checkpoints_still_load(tmp_path):
    """Written before the activation and normalisation were recorded: read as they were built."""
    path = claver.save_checkpoint(tiny(temporal_init="trunc_normal"), tmp_path / "old")
    meta = json.loads(path.with_suffix(".json").read_text())
    for key in ("quick_gelu", "normalization", "drop_path_scheme"):
        del meta["claver"][key]
    meta["format"], meta["claver"]["temporal_init"] = 1, "paper"
    path.with_suffix(".json").write_text(json.dumps(meta))
    config = claver.load_checkpoint(path).config
    assert (config.temporal_init, config.quick_gelu, config.drop_path_scheme) == ("trunc_normal", True, "temporal")


def test_create_model_and_transforms_use_the_models_size_and_normalization(tmp_path):
    model, train_tf, eval_tf = claver.create_model_and_transforms(TINY, frames=3, normalization="clip")
    clip = torch.randint(0, 256, (3, 3, 48, 64), dtype=torch.uint8)
    assert train_tf(clip).shape == (3, 3, 32, 32) and eval_tf(clip).shape == (1, 3, 3, 32, 32)
    assert eval_tf.config.normalization == "clip" == model.config.normalization
    loaded = claver.load_checkpoint(claver.save_checkpoint(model, tmp_path / "m"))
    assert claver.video_transforms(loaded)[1].config.normalization == "clip"


def test_torchscript_archive_loads_with_quick_gelu(tmp_path):
    """OpenAI's own checkpoints are TorchScript archives: read with torch.jit.load, QuickGELU on."""
    torch.manual_seed(2)
    clip = _build_clip(TINY, quick_gelu=True).eval()
    with pytest.warns(FutureWarning):  # torch.jit.script is deprecated, but OpenAI's files are scripted
        torch.jit.script(clip).save(str(tmp_path / "openai.pt"))
    model = claver.create_model(TINY, pretrained=tmp_path / "openai.pt", frames=2).eval()
    x = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        ours = model.video.encode_frames(x, temporal=False)
        theirs = clip.encode_image(x.flatten(0, 1)).view(1, 2, -1)
    assert rel_err(ours, theirs) <= 1e-5
