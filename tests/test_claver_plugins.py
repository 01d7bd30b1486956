"""The timm helper and the FLOP counter."""

import timm
import torch

from claver import flops
from claver.timm_video import VideoViT


def test_timm_vit_becomes_video_encoder():
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=5).eval()
    model = VideoViT(vit, frames=3, layout="kmct", identity_init=True).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        per_frame = vit(x.flatten(0, 1)).view(2, 3, 5).mean(1)
    assert out.shape == (2, 5)
    torch.testing.assert_close(out, per_frame, rtol=1e-5, atol=1e-5)
    model.train()
    torch.nn.init.normal_(model.temporal.resblocks[0].attn.out_proj.weight, std=0.02)
    model(x).sum().backward()
    assert model.temporal.resblocks[0].attn.in_proj_weight.grad.abs().sum() > 0


def test_flops_count_only_attending_pairs():
    r = flops.count("claver-tiny", frames=4)
    # claver-tiny: 1 temporal block, 64 wide, 2 heads of 32, 4 frames x 17 tokens, kmt
    t, l, d, heads = 4, 17, 32, 2
    pairs = t * (t - 1) * l * l + t * l
    assert r["kron_attn_flops"] == 4 * heads * d * pairs
    assert r["flops"] > r["kron_attn_flops"] > 0
