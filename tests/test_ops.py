"""torch.library.opcheck on every op of the kron_attn namespace, on each device it runs on
(schemas, fake kernels, autograd registration, torch.compile tracing)."""

import pytest
import torch
from conftest import sample_inputs
from harness import device_of

from kron_attn import backends
from kron_attn.layouts import preset


def check_pair(fwd, bwd, device, dtype):
    q, k, v = sample_inputs(1, 2, 3, 20, 64, dtype, device)
    lay = preset("kmt", 3)
    torch.library.opcheck(fwd, (q, k, v, lay, 0.125))
    out, lse = fwd(q, k, v, lay, 0.125)
    torch.library.opcheck(bwd, (torch.randn_like(out), q, k, v, out, lse, lay, 0.125))


CHECKS = {
    "kron_attn::attention_fwd": "the CPU kernel (float32, float64) and the CUDA kernel on a GPU (bfloat16)",
    "kron_attn::attention_bwd": "with attention_fwd",
    "kron_attn::block_schedule": "layout tensors on the CPU",
    "kron_attn::triton_fwd": "where Triton runs (GPU, or CPU under its interpreter)",
    "kron_attn::triton_bwd": "with triton_fwd",
    "kron_attn::cuda_emu_fwd": "bfloat16 CPU tensors through the emulator",
    "kron_attn::cuda_emu_bwd": "with cuda_emu_fwd",
}


def test_every_registered_op_is_checked():
    names = {n for n in torch._C._dispatch_get_all_op_names() if n.startswith("kron_attn::")}
    assert names <= set(CHECKS), f"ops without an opcheck below: {sorted(names - set(CHECKS))}"


def test_every_backend_op_pair_is_declared():
    """One signature for every backend's pair (csrc/kron_attn.cpp), whether its kernels are built or not."""

    def signature(op: str) -> str:
        return str(getattr(torch.ops.kron_attn, op).default._schema).split("(", 1)[1]

    for b in backends.BACKENDS:
        if b.op is not None:
            assert signature(f"{b.op}_fwd") == signature("attention_fwd")
            assert signature(f"{b.op}_bwd") == signature("attention_bwd")


@pytest.mark.parametrize(
    "name,dtype",
    [("cpu", torch.float32), ("cpu", torch.float64), ("cuda", torch.bfloat16), ("triton", torch.float32),
     ("cuda_emu", torch.bfloat16)],
)  # fmt: skip
def test_backend_ops(name, dtype):
    b = backends.get(name)
    if reason := b.why_unavailable():
        pytest.skip(reason)
    b.load()
    fwd, bwd = (getattr(torch.ops.kron_attn, f"{b.op}_{d}").default for d in ("fwd", "bwd"))
    check_pair(fwd, bwd, device_of(name), dtype)


@pytest.mark.parametrize("frames,tokens,bm,bn", [(3, 20, 16, 32), (1, 1, 64, 64), (8, 50, 128, 64)])
def test_block_schedule(frames, tokens, bm, bn):
    for lay in (preset("kmct", frames), torch.rand(frames, frames, generator=torch.Generator().manual_seed(0)) < 0.5):
        torch.library.opcheck(torch.ops.kron_attn.block_schedule.default, (lay, tokens, bm, bn))
