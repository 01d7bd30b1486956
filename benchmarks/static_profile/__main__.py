"""python -m benchmarks.static_profile [--cuda] [--triton] [--flash-attn SRC] [--arch 80,90]

Prints the static GPU profile (no GPU needed) as markdown tables: every CUDA kernel of the built
extension and every Triton kernel in every autotune config, for sm_80 and sm_90 (registers,
spills, stack, shared memory, CTAs x warps per SM on an A100 and an H100) and, for the CUDA
forward and backward kernels, one steady-state loop iteration counted in SASS (instructions per
mma, ldmatrix per mma, barriers), a FULL tile and a PARTIAL one. With --flash-attn, the same count
of FlashAttention-2's forward compiled from its sources (the anchor row). The method is described
in BENCHMARKS.md ("Static GPU profile").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import cuda, occupancy, sass
from .tools import find


def _occ(res, threads: int, smem: int) -> str:
    return " / ".join(
        str(occupancy.occupancy(gpu, res.registers, threads, res.static_smem + smem)) for gpu in occupancy.GPUS
    )


def cuda_tables(archs: set[int]) -> tuple[str, str]:
    tools = find()
    found = [k for k in cuda.kernels(tools) if k.arch in archs]
    built = {k.arch for k in found}
    missing = archs - built
    launches = cuda.launches()
    head = (
        f"| kernel | arch | D | registers | spill bytes (stack) | smem static + launch (T = {cuda.FRAMES}) "
        "| CTAs x warps per SM, A100 / H100 |\n|---|---|---|---|---|---|---|\n"
    )
    rows, seen = [], set()
    for k in sorted(found, key=lambda k: (k.name, k.arch, k.head_dim or 0)):
        if k.dtype != "bf16" or (k.name, k.arch, k.head_dim) in seen:
            continue  # fp16 compiles to the same resources; delta_kernel is in every unit
        seen.add((k.name, k.arch, k.head_dim))
        launch = launches.get((k.name, k.head_dim))
        threads = launch["threads"] if launch else 256
        smem = launch["smem"] if launch else 0
        r = k.resources
        rows.append(
            f"| {k.name} | sm_{k.arch} | {k.head_dim or 'any'} | {r.registers} | {r.local} ({r.stack}) "
            f"| {r.static_smem} + {smem} | {_occ(r, threads, smem) if launch else 'n/a'} |"
        )
    resources = head + "\n".join(rows)
    if missing:
        resources += f"\n\nNot in this build: sm_{', sm_'.join(str(a) for a in sorted(missing))} "
        resources += '(rebuild with TORCH_CUDA_ARCH_LIST="8.0;9.0")'

    loop_head = (
        "| kernel | arch | D | tile | SASS instr. | mma | instr. per mma | LDSM per mma | barriers "
        "| PARTIAL / FULL | division in loop |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    full, partial = cuda.cases()
    for k in sorted(found, key=lambda k: (k.name, k.arch, k.head_dim or 0)):
        if k.name not in cuda.LOOPS or k.dtype != "bf16" or k.function is None:
            continue
        line = cuda.loop_line(k.name)
        its = [sass.count_iteration(k.function, line, case) for case in (full, partial)]
        division = "yes" if sass.division_in_loop(k.function, line) else "no"
        for case, it in zip((full, partial), its):
            ratio = f"{its[1].instructions / its[0].instructions:.2f}" if case is partial else ""
            lines.append(
                f"| {k.name} | sm_{k.arch} | {k.head_dim} | {case.name} | {it.instructions} | {it.mma} "
                f"| {it.per_mma:.2f} | {it.ldsm_per_mma:.2f} | {it.barriers} | {ratio} | {division} |"
            )
    return resources, loop_head + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.static_profile", description=__doc__.split("\n\n")[1])
    parser.add_argument("--cuda", action="store_true", help="only the CUDA kernels")
    parser.add_argument("--triton", action="store_true", help="only the Triton kernels")
    parser.add_argument("--flash-attn", type=Path, metavar="SRC", help="FlashAttention-2 source tree: the anchor row")
    parser.add_argument("--arch", default="80,90", help="architectures, e.g. 80,90 (default)")
    args = parser.parse_args()
    archs = {int(a) for a in args.arch.split(",")}
    both = not args.cuda and not args.triton
    print("Static GPU profile (static: compiled code, no GPU)\n")
    if args.cuda or both:
        resources, loops = cuda_tables(archs)
        print("## CUDA kernels: resources\n\n" + resources + "\n")
        print("## CUDA kernels: one steady-state iteration\n\n" + loops + "\n")
    if args.triton or both:
        from . import triton_kernels

        print("## Triton kernels\n\n" + triton_kernels.table(archs) + "\n")
    if args.flash_attn:
        from . import flash_attn

        print("## FlashAttention-2 forward (anchor)\n\n" + flash_attn.table(args.flash_attn, archs) + "\n")


if __name__ == "__main__":
    main()
