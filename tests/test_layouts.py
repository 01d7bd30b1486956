import pytest
import torch

from kron_attn import layouts, masks


def paper_blocked(name, t, l):
    """The paper's Kronecker construction of the blocked positions (the paper's definition of KMT and KMCT)."""
    j_l, i_l, i_t = torch.ones(l, l), torch.eye(l), torch.eye(t)
    kmt = torch.kron(i_t, j_l - i_l)
    if name == "kmt":
        return kmt
    return kmt + torch.kron(torch.triu(torch.ones(t, t), 1), j_l)


@pytest.mark.parametrize("name", ["kmt", "kmct"])
@pytest.mark.parametrize("t,l", [(1, 1), (1, 5), (3, 1), (4, 3), (8, 7)])
def test_presets_equal_paper_kronecker_masks(name, t, l):
    blocked = paper_blocked(name, t, l)
    assert torch.equal(masks.dense_mask(t, l, name), blocked == 0)
    expected = torch.zeros_like(blocked).masked_fill(blocked > 0, float("-inf"))
    assert torch.equal(masks.additive_mask(t, l, name), expected)


def test_preset_matrices():
    assert layouts.preset("kmt", 3).tolist() == [[False, True, True], [True, False, True], [True, True, False]]
    assert layouts.preset("kmct", 3).tolist() == [[False, False, False], [True, False, False], [True, True, False]]
    assert layouts.preset("joint", 2).all()
    assert torch.equal(layouts.preset("frame", 4), torch.eye(4, dtype=torch.bool))


def test_window():
    w = layouts.window(6, 2)
    assert w.tolist()[3] == [False, True, True, False, True, True]
    wc = layouts.window(6, 2, causal=True)
    assert wc.tolist()[3] == [False, True, True, False, False, False]
    assert torch.equal(layouts.window(5, 10), layouts.preset("kmt", 5))
    assert torch.equal(layouts.window(5, 10, causal=True), layouts.preset("kmct", 5))


def test_dense_mask_rule_with_custom_layout():
    lay = torch.rand(5, 5) > 0.5
    m = masks.dense_mask(5, 3, lay)
    i = torch.arange(15)
    expected = lay[i[:, None] // 3, i[None, :] // 3] | (i[:, None] == i[None, :])
    assert torch.equal(m, expected)
    assert m.diagonal().all()


@pytest.mark.parametrize("layout", [*layouts.PRESETS, "custom"])
def test_flex_mask_mod_matches_dense_mask(layout):
    t, l = 4, 3
    lay = torch.rand(t, t) > 0.5 if layout == "custom" else layout
    mod = masks.flex_mask_mod(l, lay)
    i = torch.arange(t * l)
    got = mod(0, 0, i[:, None], i[None, :])
    assert torch.equal(got.expand(t * l, t * l), masks.dense_mask(t, l, lay))


def test_sparsity_and_render():
    assert layouts.sparsity("joint", 4, 5) == 0.0
    assert layouts.sparsity("kmt", 2, 3) == pytest.approx(1 - (2 * 9 + 6) / 36)
    assert layouts.render("kmct", 3) == ". . .\n# . .\n# # ."


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: layouts.preset("kmtx", 4), ValueError, "unknown layout preset 'kmtx'"),
        (lambda: layouts.preset("kmt", 0), ValueError, "frames must be an int >= 1"),
        (lambda: layouts.resolve(torch.ones(3, 3), 3), TypeError, "torch.bool"),
        (lambda: layouts.resolve(torch.ones(3, 2, dtype=torch.bool), 3), ValueError, r"square .* shape \(3, 2\)"),
        (lambda: layouts.resolve([[True]], 1), TypeError, "preset name, a Layout or a torch.bool tensor, got list"),
        (lambda: layouts.window(4, -1), ValueError, "window size"),
        (lambda: masks.dense_mask(2, 0, "kmt"), ValueError, "tokens per frame"),
        (lambda: masks.flex_mask_mod(3, "nope"), ValueError, "unknown layout preset"),
    ],
)
def test_layout_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
