"""The Triton kernels compiled for sm_80 and sm_90 with no GPU (``triton.compile`` with a
``GPUTarget``), in every autotune config the autotuner may choose for each head dim and dtype:
registers, stack (spills land there), shared memory, occupancy, and whether the tensor-core
instructions are Hopper's warpgroup mma (HGMMA) on sm_90."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import cuda, occupancy, sass
from .tools import Tools, find

HEAD_DIMS = (16, 32, 64, 128, 256)  # every BLOCK_D the backend uses (next power of two >= D, >= 16)
DTYPES = ("bf16",)  # float16 compiles as bfloat16 does; float32 inputs run in bfloat16


@dataclass
class Compiled:
    kernel: str
    arch: int
    block_d: int
    dtype: str
    warps: int
    stages: int
    blocks: tuple[int, int]
    registers: int
    stack: int
    smem: int
    mma: str  # the tensor-core opcodes in the SASS, e.g. "HGMMA", "HMMA"


def _signature(fn, dtype: str) -> dict[str, str]:
    """Triton types of a kernel's arguments, by the names kron_attn/triton/kernels.py uses."""
    elem = {"bf16": "*bf16", "fp16": "*fp16"}[dtype]
    sig = {}
    for i, name in enumerate(fn.arg_names):
        if fn.params[i].is_constexpr:
            sig[name] = "constexpr"
        elif name in ("Q", "K", "V", "O", "DO"):
            sig[name] = elem
        elif name in ("LSE", "DELTA", "DK", "DV", "DQ"):
            sig[name] = "*fp32"
        elif name == "LAYOUT":
            sig[name] = "*u8"
        elif name in ("CNT", "TILES", "KINDS"):
            sig[name] = "*i32"
        elif name in ("qk_scale", "scale"):
            sig[name] = "fp32"
        else:
            sig[name] = "i32"
    return sig


def compile_one(tools: Tools, fn, arch: int, block_d: int, dtype: str, config, workdir: Path) -> Compiled:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from kron_attn.triton import ops

    bm, bn = ops.tile_sizes(fn.__name__, block_d, arch)
    constexprs = {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_D": block_d, "PARTIAL": ops.PARTIAL}
    # The launcher's pointers and strides divisible by 16 as Triton specialises them.
    aligned = [i for i, n in enumerate(fn.arg_names) if _signature(fn, dtype)[n].startswith("*")]
    attrs = {(i,): [["tt.divisibility", 16]] for i in aligned}
    src = ASTSource(fn, _signature(fn, dtype), constexprs, attrs)
    kernel = triton.compile(
        src,
        target=GPUTarget("cuda", arch, 32),
        options={"num_warps": config.num_warps, "num_stages": config.num_stages},
    )
    cubin = workdir / f"{fn.__name__}.cubin"
    cubin.write_bytes(kernel.asm["cubin"])
    (res,) = cuda.cubin_resources(tools, cubin, arch).values()
    funcs = sass.parse(sass.disassemble(cubin, tools.nvdisasm))
    mma = sorted({i.base for f in funcs.values() for i in f.instrs if i.base in sass.MMA_OPCODES})
    return Compiled(
        fn.__name__,
        arch,
        block_d,
        dtype,
        config.num_warps,
        config.num_stages,
        (bm, bn),
        res.registers,
        res.stack,
        kernel.metadata.shared,
        "+".join(mma) or "none",
    )


def compile_all(archs: set[int], head_dims=HEAD_DIMS, dtypes=DTYPES, kernels=None) -> list[Compiled]:
    """Every kernel in every config the autotuner may choose (ops.configs), for each arch, head
    dim and dtype."""
    from kron_attn.triton import kernels as k
    from kron_attn.triton import ops

    tools = find()
    fns = kernels or (k.fwd_kernel, k.bwd_dkdv_kernel, k.bwd_dq_kernel)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in sorted(archs):
            for fn in fns:
                for d in head_dims:
                    for dtype in dtypes:
                        for config in ops.configs(fn.__name__, d, arch):
                            out.append(compile_one(tools, fn, arch, d, dtype, config, Path(tmp)))
    return out


def table(archs: set[int]) -> str:
    rows = [
        "| kernel | arch | BLOCK_D | dtype | tile | warps, stages | registers | stack | smem | mma "
        "| CTAs x warps per SM, A100 / H100 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in compile_all(archs):
        occ = " / ".join(str(occupancy.occupancy(g, c.registers, 32 * c.warps, c.smem)) for g in occupancy.GPUS)
        rows.append(
            f"| {c.kernel} | sm_{c.arch} | {c.block_d} | {c.dtype} | {c.blocks[0]}x{c.blocks[1]} "
            f"| {c.warps}, {c.stages} | {c.registers} | {c.stack} | {c.smem} | {c.mma} | {occ} |"
        )
    return "\n".join(rows)
