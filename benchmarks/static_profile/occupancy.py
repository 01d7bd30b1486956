"""CTAs and warps per SM from a kernel's registers, shared memory and block size: the rules of
NVIDIA's ``cuda_occupancy.h`` (registers allocated per warp in units of 256, spread over four
sub-partitions; shared memory in units of 128 bytes, plus 1 KB the driver reserves per CTA)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    name: str
    arch: int  # the sm_XY the kernels are compiled for
    smem_per_sm: int  # the largest shared-memory carve-out, bytes
    smem_per_block: int  # opt-in maximum per block, bytes
    regs_per_sm: int = 65536
    max_warps: int = 64
    max_ctas: int = 32


A100 = Gpu("A100", 80, smem_per_sm=164 * 1024, smem_per_block=163 * 1024)
H100 = Gpu("H100", 90, smem_per_sm=228 * 1024, smem_per_block=227 * 1024)
GPUS = (A100, H100)

RESERVED_SMEM = 1024  # per CTA, sm_80 and later
_SUB_PARTITIONS = 4


@dataclass(frozen=True)
class Occupancy:
    ctas: int
    warps: int
    limit: str  # what bounds it: "registers", "shared memory", "warps" or "CTAs"

    def __str__(self) -> str:
        return f"{self.ctas}x{self.warps // self.ctas if self.ctas else 0}"


def _round_up(x: int, unit: int) -> int:
    return -(-x // unit) * unit


def occupancy(gpu: Gpu, registers: int, threads: int, smem: int) -> Occupancy:
    """CTAs per SM (and warps) for a kernel using ``registers`` per thread, ``threads`` per CTA and
    ``smem`` bytes of shared memory per CTA (static and dynamic, without the driver's reserve)."""
    warps = -(-threads // 32)
    regs_per_warp = _round_up(max(registers, 1) * 32, 256)
    by_regs = (gpu.regs_per_sm // _SUB_PARTITIONS // regs_per_warp) * _SUB_PARTITIONS // warps
    per_cta = _round_up(smem + RESERVED_SMEM, 128)
    by_smem = gpu.smem_per_sm // per_cta if smem <= gpu.smem_per_block else 0
    limits = {
        "registers": by_regs,
        "shared memory": by_smem,
        "warps": gpu.max_warps // warps,
        "CTAs": gpu.max_ctas,
    }
    limit = min(limits, key=limits.get)
    ctas = limits[limit]
    return Occupancy(ctas, ctas * warps, limit)
