"""Parameters and FLOPs per view of a CLAVER video encoder.

    python -m claver.flops --arch ViT-B-16 --frames 8 [--size 224] [--layout kmt]

Counts with torch.utils.flop_counter (kron_attn registers a formula that counts only the
attending pairs). FLOPs are multiply-adds x 2; GMACs are printed too, since papers often
report multiply-adds as "FLOPs".
"""

from __future__ import annotations

if not __package__:  # run by its path (python claver/flops.py): no package for the imports below
    import _script

    _script.run_as_module(__file__)

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import ClaverConfig
from .factory import create_model


def count(arch: str, frames: int, size: int | None = None, layout: str = ClaverConfig.layout) -> dict[str, float]:
    """Parameters of each branch and forward FLOPs of one view through the video branch."""
    model = create_model(arch, frames=frames, layout=layout).eval()
    size = size or model.video.visual.image_size[0]
    x = torch.zeros(1, frames, 3, size, size)
    counter = FlopCounterMode(display=False)
    # nn.MultiheadAttention's inference fast path is one fused op the counter cannot see.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), counter:
            model.encode_video(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    by_op = counter.get_flop_counts()["Global"]
    return {
        "video_params": sum(p.numel() for p in model.video.parameters()),
        "text_params": sum(p.numel() for p in model.text.parameters()),
        "flops": float(counter.get_total_flops()),
        "kron_attn_flops": float(sum(v for k, v in by_op.items() if "kron_attn" in str(k))),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default=ClaverConfig.arch)
    ap.add_argument("--frames", type=int, default=ClaverConfig.frames)
    ap.add_argument("--size", type=int, default=None, help="input size (default: the arch's)")
    ap.add_argument("--layout", default=ClaverConfig.layout)
    args = ap.parse_args(argv)
    r = count(args.arch, args.frames, args.size, args.layout)
    print(f"arch {args.arch}, {args.frames} frames, layout {args.layout}")
    print(f"params: video {r['video_params'] / 1e6:.1f} M, text {r['text_params'] / 1e6:.1f} M")
    print(
        f"per view: {r['flops'] / 1e9:.1f} GFLOPs = {r['flops'] / 2e9:.1f} GMACs "
        f"(of which Kronecker attention {r['kron_attn_flops'] / 1e9:.1f} GFLOPs)"
    )


if __name__ == "__main__":
    main()
