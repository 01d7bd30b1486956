"""The anchor row: FlashAttention-2's forward kernel compiled from its sources with our nvcc
flags (tools/build_config.py) for each architecture, and measured as ours are. Opt-in: the sources
come from its source package (``FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE pip download --no-deps
--no-binary :all: --no-build-isolation flash-attn``, unpacked), never from this repository; one
kernel instantiation is compiled (the one FlashAttention-2 launches for bf16 without dropout,
causality, local window, ALiBi or softcap, sequence lengths that divide its tiles), in about half a
minute per architecture.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from tools.build_config import nvcc_flags

from . import occupancy, sass
from .cuda import cubin_resources
from .tools import find

# The tiles FlashAttention-2's launch template picks for these head dims on sm_80 and sm_90
# (flash_fwd_launch_template.h: run_mha_fwd_hdim64 / hdim128, no dropout, not causal).
TILES = {64: (128, 128, 4), 128: (128, 64, 4)}
LOOP = "for (; n_block >= n_block_min; --n_block)"  # the steady loop: the second, unmasked one

_UNIT = """#include "namespace_config.h"
#include "flash_fwd_launch_template.h"
namespace FLASH_NAMESPACE {{
void* anchor() {{
  return (void*)&flash_fwd_kernel<Flash_fwd_kernel_traits<{d}, {bm}, {bn}, {warps}, false, false, cutlass::bfloat16_t>,
                                  false, false, false, false, true, true, false, false>;
}}
}}
"""


def _compile(src: Path, d: int, arch: int, out: Path) -> None:
    import torch.utils.cpp_extension as ext

    bm, bn, warps = TILES[d]
    unit = out.with_suffix(".cu")
    unit.write_text(_UNIT.format(d=d, bm=bm, bn=bn, warps=warps))
    csrc = src / "csrc"
    includes = [csrc / "flash_attn", csrc / "flash_attn" / "src", csrc / "cutlass" / "include"]
    includes += [Path(p) for p in ext.include_paths()]
    nvcc = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"
    # FlashAttention-2 builds with the half/bfloat16 operators on and extended lambdas.
    theirs = ["--expt-extended-lambda", "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__"]
    theirs += ["-U__CUDA_NO_HALF2_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__"]
    cmd = [str(nvcc), "-cubin", f"-arch=sm_{arch}", "-std=c++20", *nvcc_flags(), *theirs]
    cmd += [f"-I{p}" for p in includes] + [str(unit), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def table(src: Path, archs: set[int]) -> str:
    if not (src / "csrc" / "flash_attn" / "src" / "flash_fwd_kernel.h").is_file():
        raise FileNotFoundError(f"{src} is not a FlashAttention-2 source tree (csrc/flash_attn/src/flash_fwd_kernel.h)")
    tools = find()
    loop = sass.marker_line(src / "csrc" / "flash_attn" / "src" / "flash_fwd_kernel.h", LOOP)
    rows = [
        "| kernel | arch | D | tile, warps | registers | stack | instr. per mma | LDSM per mma | barriers "
        "| CTAs x warps per SM, A100 / H100 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for arch in sorted(archs):
            for d, (bm, bn, warps) in TILES.items():
                cubin = Path(tmp) / f"fa2_fwd_d{d}.sm_{arch}.cubin"
                _compile(src, d, arch, cubin)
                ((name, res),) = cubin_resources(tools, cubin, arch).items()
                func = sass.parse(sass.disassemble(cubin, tools.nvdisasm))[name]
                it = sass.count_iteration(func, loop, sass.Case("FULL", opcodes=(("LDGSTS", 1),)))
                smem = (bm + 2 * bn) * d * 2  # Q, K, V tiles (Flash_fwd_kernel_traits::kSmemSize)
                occ = " / ".join(
                    str(occupancy.occupancy(g, res.registers, 32 * warps, res.static_smem + smem))
                    for g in occupancy.GPUS
                )
                rows.append(
                    f"| FlashAttention-2 fwd | sm_{arch} | {d} | {bm}x{bn}, {warps} | {res.registers} | {res.stack} "
                    f"| {it.per_mma:.2f} | {it.ldsm_per_mma:.2f} | {it.barriers} | {occ} |"
                )
    return "\n".join(rows)
