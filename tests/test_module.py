import pytest
import torch
from torch import nn

import kron_attn
from kron_attn import masks


@pytest.mark.parametrize("layout", ["kmt", "kmct", "joint"])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_multihead_attention_with_paper_mask(layout, bias):
    c, heads, t, l = 48, 4, 4, 9
    ours = kron_attn.KroneckerAttention(c, heads, frames=t, layout=layout, bias=bias).double()
    mha = nn.MultiheadAttention(c, heads, bias=bias, batch_first=True).double()
    mha.load_state_dict(ours.state_dict())
    x = torch.randn(3, t * l, c, dtype=torch.float64)
    expected = mha(x, x, x, attn_mask=masks.additive_mask(t, l, layout, dtype=torch.float64), need_weights=False)[0]
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-10)


def test_state_dict_interchangeable_with_multihead_attention():
    mha = nn.MultiheadAttention(64, 8, batch_first=True)
    ours = kron_attn.KroneckerAttention(64, 8, frames=2)
    assert set(ours.state_dict()) == set(mha.state_dict())
    ours.load_state_dict(mha.state_dict())  # strict
    mha.load_state_dict(ours.state_dict())


@pytest.mark.parametrize("layout", kron_attn.layouts.PRESETS)
def test_builds_on_the_meta_device_then_loads_weights(layout):
    # As large models are built (FSDP, accelerate, claver.load_checkpoint): no memory, no init.
    with torch.device("meta"):
        ours = kron_attn.KroneckerAttention(32, 4, frames=3, layout=layout)
    assert ours.in_proj_weight.is_meta and ours.layout.device.type == "cpu"
    ref = kron_attn.KroneckerAttention(32, 4, frames=3, layout=layout).double()
    ours.load_state_dict(ref.state_dict(), assign=True)
    x = torch.randn(2, 3 * 5, 32, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_float32_matches_reference_module():
    c, heads, t, l = 64, 4, 8, 50
    ours = kron_attn.KroneckerAttention(c, heads, frames=t, layout="kmct")
    mha = nn.MultiheadAttention(c, heads, batch_first=True)
    mha.load_state_dict(ours.state_dict())
    x = torch.randn(2, t * l, c)
    expected = mha(x, x, x, attn_mask=masks.additive_mask(t, l, "kmct"), need_weights=False)[0]
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)


def test_module_errors():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        kron_attn.KroneckerAttention(10, 3, frames=2)
    block = kron_attn.KroneckerAttention(8, 2, frames=2)
    with pytest.raises(ValueError, match=r"expected input \(B, N, 8\)"):
        block(torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match="not a positive multiple of frames"):
        block(torch.randn(2, 5, 8))
