"""kron_attn in other people's ViTs: Hugging Face transformers (AttentionInterface), modules with
nn.MultiheadAttention (swap_attention), torch.export; the Layout value."""

import pytest
import torch
from torch import nn

import kron_attn
from kron_attn import KroneckerAttention, Layout, masks, swap_attention
from kron_attn.integrations import transformers as kron_hf

transformers = pytest.importorskip("transformers")


def dense_attention_registered(name, frames, prefix, layout="kmt"):
    """An eager attention function with the dense additive mask: the definition to match."""

    def fn(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **_):
        t, l = frames, (query.shape[2] - prefix) // frames
        mask = masks.additive_mask(t, l, layout, dtype=query.dtype, prefix=prefix)
        p = torch.softmax(query @ key.transpose(-1, -2) * scaling + mask, dim=-1)
        return (p @ value).transpose(1, 2).contiguous(), None

    transformers.AttentionInterface.register(name, fn)
    return name


MODELS = {
    "videomae": (
        lambda impl: transformers.VideoMAEModel(
            transformers.VideoMAEConfig(
                image_size=32, patch_size=16, num_frames=6, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=64, attn_implementation=impl,
            )
        ),
        (3, 0),  # frames, prefix tokens
    ),
    "vivit": (
        lambda impl: transformers.VivitModel(
            transformers.VivitConfig(
                image_size=32, num_frames=8, tubelet_size=[2, 16, 16], hidden_size=32, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=64, attn_implementation=impl,
            )
        ),
        (4, 1),
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("layout", ["kmt", "kmct"])
def test_transformers_models_equal_eager_attention_with_the_dense_mask(kind, layout):
    build, (frames, prefix) = MODELS[kind]
    ours = kron_hf.register(f"kron_attn_{layout}", layout=layout)
    theirs = dense_attention_registered(f"dense_{kind}_{layout}", frames, prefix, layout)
    torch.manual_seed(0)
    model = build(ours).double()
    reference = build(theirs).double()
    reference.load_state_dict(model.state_dict())
    assert kron_hf.frames_and_prefix(model.config) == (frames, prefix)
    x = torch.randn(2, model.config.num_frames, 3, 32, 32, dtype=torch.float64)
    outs, grads = [], []
    for m in (model, reference):
        y = m(x).last_hidden_state
        g = torch.autograd.grad(
            (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum(),
            list(m.parameters()),
            allow_unused=True,  # the pooler does not reach last_hidden_state
        )
        outs.append(y)
        grads.append(g)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-10)
    assert [a is None for a in grads[0]] == [b is None for b in grads[1]]
    for a, b in zip(*grads):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    model.set_attn_implementation(theirs)  # the other way in: switching a built model
    torch.testing.assert_close(model(x).last_hidden_state, outs[1], rtol=0, atol=1e-12)


def test_frames_must_be_given_where_the_config_does_not_say():
    with pytest.raises(ValueError, match="cannot tell how the tokens of a 'bert' model split into frames"):
        kron_hf.frames_and_prefix(transformers.BertConfig())
    assert kron_hf.frames_and_prefix(transformers.BertConfig(), frames=4, prefix_tokens=2) == (4, 2)


def encoder_layers(batch_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=batch_first)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).double().eval()


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("prefix", [0, 1])
def test_swap_attention_keeps_the_weights_and_applies_the_layout(batch_first, prefix):
    frames, tokens = 3, 5
    model = encoder_layers(batch_first)
    reference = encoder_layers(batch_first)
    mask = masks.additive_mask(frames, tokens, "kmct", dtype=torch.float64, prefix=prefix)
    swap_attention(model, frames, "kmct", prefix_tokens=prefix)
    assert sum(isinstance(m, KroneckerAttention) for m in model.modules()) == 2
    x = torch.randn(2, prefix + frames * tokens, 32, dtype=torch.float64)
    x = x if batch_first else x.transpose(0, 1)
    torch.testing.assert_close(model(x), reference(x, mask=mask), rtol=0, atol=1e-10)


def test_multihead_attention_calls_it_cannot_honour_fail_clearly():
    attn = KroneckerAttention(16, 2, frames=2)
    x, y = torch.randn(1, 6, 16), torch.randn(1, 6, 16)
    out, weights = attn(x, x, x, need_weights=False)
    assert weights is None and torch.equal(out, attn(x))
    with pytest.raises(ValueError, match="need_weights=False"):
        attn(x, x, x)
    with pytest.raises(ValueError, match="no attn_mask"):
        attn(x, x, x, need_weights=False, attn_mask=torch.zeros(6, 6))
    with pytest.raises(ValueError, match="key and value must be the query"):
        attn(x, y, y, need_weights=False)
    with pytest.raises(ValueError, match="separate key/value dimensions"):
        swap_attention(nn.Sequential(nn.MultiheadAttention(16, 2, kdim=8, vdim=8)), frames=2)
    with pytest.raises(ValueError, match="no nn.MultiheadAttention"):
        swap_attention(nn.Linear(2, 2), frames=2)


def test_torch_export():
    module = KroneckerAttention(32, 4, frames=3, layout="kmct", prefix_tokens=1).eval()
    x = torch.randn(2, 1 + 3 * 6, 32)
    exported = torch.export.export(module, (x,))
    torch.testing.assert_close(exported.module()(x), module(x))
    assert any("kron_attn" in str(n.target) for n in exported.graph.nodes)


def test_layout_value():
    lay = Layout.of("kmt", 4)
    assert lay.frames == 4 and lay.name == "kmt" and lay.allowed_pairs(3) == 12 * 9 + 4 * 3
    assert lay.allowed_pairs(3, prefix=2) == 12 * 9 + 4 * 3 + 2 * 2 * 12 + 4
    assert lay.sparsity() == pytest.approx(4 / 16) and lay.sparsity(3) == pytest.approx(1 - 120 / 144)
    assert lay.token_mask(3, prefix=1).sum() == lay.allowed_pairs(3, prefix=1)
    assert str(lay).startswith("kmt layout, 4 frames") and ". # # #" in str(lay)
    custom = Layout(torch.tensor([[True, False], [True, True]]))
    q = torch.randn(1, 1, 2 * 3, 8, dtype=torch.float64)
    torch.testing.assert_close(
        kron_attn.attention(q, q, q, frames=2, layout=custom),
        kron_attn.attention(q, q, q, frames=2, layout=custom.matrix),
    )
    with pytest.raises(ValueError, match=r"shape \(frames, frames\) = \(3, 3\)"):
        kron_attn.attention(q[:, :, :6], q[:, :, :6], q[:, :, :6], frames=3, layout=custom)
    assert "P" in kron_attn.layouts.render("kmt", 3, prefix=1).splitlines()[1]
