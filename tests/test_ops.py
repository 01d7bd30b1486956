"""torch.library.opcheck on every op of the kron_attn namespace, on each device it runs on
(schemas, fake kernels, autograd registration, torch.compile tracing)."""

import pytest
import torch
from conftest import sample_inputs
from harness import device_of

import kron_attn
from kron_attn import cuda_emu
from kron_attn import triton as triton_backend
from kron_attn.layouts import preset

if triton_backend.available():
    from kron_attn.triton import ops as triton_ops  # noqa: F401  (registers kron_attn::triton_*)

GPU = torch.cuda.is_available() and kron_attn._C.has_cuda()


def check_pair(fwd, bwd, device, dtype):
    q, k, v = sample_inputs(1, 2, 3, 20, 64, dtype, device)
    lay = preset("kmt", 3)
    torch.library.opcheck(fwd, (q, k, v, lay, 0.125))
    out, lse = fwd(q, k, v, lay, 0.125)
    torch.library.opcheck(bwd, (torch.randn_like(out), q, k, v, out, lse, lay, 0.125))


CHECKS = {
    "kron_attn::attention_fwd": "attention on the CPU (float32, float64) and on a GPU (bfloat16)",
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_attention_cpu(dtype):
    check_pair(torch.ops.kron_attn.attention_fwd.default, torch.ops.kron_attn.attention_bwd.default, "cpu", dtype)


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU and the compiled CUDA kernel")
def test_attention_cuda():
    check_pair(torch.ops.kron_attn.attention_fwd.default, torch.ops.kron_attn.attention_bwd.default, "cuda",
               torch.bfloat16)  # fmt: skip


@pytest.mark.parametrize("frames,tokens,bm,bn", [(3, 20, 16, 32), (1, 1, 64, 64), (8, 50, 128, 64)])
def test_block_schedule(frames, tokens, bm, bn):
    for lay in (preset("kmct", frames), torch.rand(frames, frames, generator=torch.Generator().manual_seed(0)) < 0.5):
        torch.library.opcheck(torch.ops.kron_attn.block_schedule.default, (lay, tokens, bm, bn))


@pytest.mark.skipif(not triton_backend.available(), reason="triton missing (or no GPU and no interpreter)")
def test_triton():
    from kron_attn.triton import ops as triton_ops

    check_pair(triton_ops.triton_fwd, triton_ops.triton_bwd, device_of("triton"), torch.float32)


@pytest.mark.skipif(not cuda_emu.available(), reason="this build has no emulator module")
def test_cuda_emu():
    check_pair(torch.ops.kron_attn.cuda_emu_fwd.default, torch.ops.kron_attn.cuda_emu_bwd.default, "cpu",
               torch.bfloat16)  # fmt: skip
