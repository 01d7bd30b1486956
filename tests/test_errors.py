"""Bad input gets an error that names the problem, from the Python API and from the raw ops."""

import pytest
import torch

import kron_attn
from kron_attn.layouts import preset


def qkv(shape=(1, 2, 6, 8), dtype=torch.float32):
    return [torch.randn(shape, dtype=dtype) for _ in range(3)]


@pytest.mark.parametrize(
    "make, err, match",
    [
        (lambda q, k, v: dict(q=q, k=k, v=v, frames=4), ValueError, "N = 6 is not a positive multiple of frames = 4"),
        (lambda q, k, v: dict(q=q, k=k, v=v, frames=0), ValueError, "frames must be an int >= 1"),
        (lambda q, k, v: dict(q=q, k=k, v=v, frames=2.0), ValueError, "frames must be an int >= 1"),
        (lambda q, k, v: dict(q=q, k=k, v=v, frames=3, layout="diag"), ValueError, "unknown layout preset"),
        (
            lambda q, k, v: dict(q=q, k=k, v=v, frames=3, layout=torch.ones(2, 2, dtype=torch.bool)),
            ValueError,
            r"shape \(frames, frames\) = \(3, 3\)",
        ),
        (lambda q, k, v: dict(q=q, k=k, v=v, frames=3, layout=torch.ones(3, 3)), TypeError, "torch.bool"),
        (lambda q, k, v: dict(q=q, k=k[..., :4], v=v, frames=3), ValueError, "k has shape"),
        (lambda q, k, v: dict(q=q, k=k, v=v[:, :1], frames=3), ValueError, "v has shape"),
        (lambda q, k, v: dict(q=q, k=k.double(), v=v, frames=3), TypeError, "k is torch.float64 but q is"),
        (lambda q, k, v: dict(q=q, k=k, v=v.to("meta"), frames=3), ValueError, "v is on meta"),
        (lambda q, k, v: dict(q=q[0], k=k[0], v=v[0], frames=3), ValueError, "q must be 4-D"),
        (lambda q, k, v: dict(q=q, k=k, v=v, frames=3, backend="tpu"), ValueError, "unknown backend 'tpu'"),
        (lambda q, k, v: dict(q=q, k=k, v=v, frames=3, backend="cuda"), ValueError, "needs CUDA tensors"),
        (lambda q, k, v: dict(q="q", k=k, v=v, frames=3), TypeError, "q must be a torch.Tensor"),
    ],
)
def test_api_errors(make, err, match):
    with pytest.raises(err, match=match):
        kron_attn.attention(**make(*qkv()))


@pytest.mark.parametrize("d", [0, 257])
def test_head_dim_out_of_range(d):
    q, k, v = qkv((1, 1, 4, d))
    with pytest.raises(ValueError, match=rf"head dim D = {d} is out of range"):
        kron_attn.attention(q, k, v, frames=2)
    with pytest.raises(RuntimeError, match=rf"head dim D = {d} is out of range"):
        torch.ops.kron_attn.attention_fwd(q, k, v, preset("kmt", 2), 1.0)


def test_unsupported_dtype():
    q = k = v = torch.ones(1, 1, 6, 4, dtype=torch.int32)
    with pytest.raises(RuntimeError, match="unsupported dtype Int"):
        torch.ops.kron_attn.attention_fwd(q, k, v, preset("kmt", 3), 1.0)


@pytest.mark.parametrize(
    "args, match",
    [
        (lambda q, k, v, lay: (q, k, v, lay[:2], 1.0), "square"),
        (lambda q, k, v, lay: (q, k, v, lay.float(), 1.0), "layout must be torch.bool"),
        (lambda q, k, v, lay: (q, k, v, preset("kmt", 4), 1.0), "N = 6 is not divisible by frames = 4"),
        (lambda q, k, v, lay: (q, k[:, :1], v, lay, 1.0), "k has shape"),
        (lambda q, k, v, lay: (q, k, v.double(), lay, 1.0), "v is Double but q is Float"),
        (lambda q, k, v, lay: (q[0], k, v, lay, 1.0), "q must be 4-D"),
    ],
)
def test_op_errors(args, match):
    q, k, v = qkv()
    with pytest.raises(RuntimeError, match=match):
        torch.ops.kron_attn.attention_fwd(*args(q, k, v, preset("kmt", 3)))


def test_backward_op_checks_lse():
    q, k, v = qkv()
    lay = preset("kmt", 3)
    out, lse = torch.ops.kron_attn.attention_fwd(q, k, v, lay, 1.0)
    with pytest.raises(RuntimeError, match=r"lse must have shape \(B, H, N\)"):
        torch.ops.kron_attn.attention_bwd(out, q, k, v, out, lse[..., :2], lay, 1.0)
    with pytest.raises(RuntimeError, match="lse must be Float"):
        torch.ops.kron_attn.attention_bwd(out, q, k, v, out, lse.double(), lay, 1.0)
    with pytest.raises(RuntimeError, match="dout has shape"):
        torch.ops.kron_attn.attention_bwd(out[:, :1], q, k, v, out, lse, lay, 1.0)
