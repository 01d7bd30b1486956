"""The CUDA kernels of the built extension (kron_attn._C), measured statically: their cubins are
extracted from the library for each architecture it was built for, and each kernel gets its
registers, spills, stack, shared memory and occupancy, and for the forward and both backward
kernels the count of one steady-state iteration of the key (or query) tile loop, FULL and PARTIAL.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import occupancy, sass
from .tools import Tools

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc" / "cuda"
# Each main loop carries this comment on its line; the profile finds the loop's back edge there.
LOOP_MARKER = "steady-state loop"
# The frames at which the launches' shared memory is quoted (the schedule grows with T).
FRAMES = 32


@dataclass(frozen=True)
class Resources:
    registers: int
    stack: int  # bytes per thread
    local: int  # bytes per thread: spills and arrays the compiler put in memory
    static_smem: int  # bytes per CTA, without the driver's reserve


@dataclass
class Kernel:
    name: str  # fwd_kernel, bwd_kv_kernel, bwd_q_kernel, delta_kernel
    arch: int
    head_dim: int | None
    dtype: str
    resources: Resources
    function: sass.Function | None = None


_KIND = re.compile(r"(fwd_kernel|bwd_kv_kernel|bwd_q_kernel|delta_kernel)")
_HEAD_DIM = re.compile(r"TraitsILi(\d+)E")
_USAGE = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def library() -> Path:
    import kron_attn

    libs = sorted(Path(kron_attn.__file__).parent.glob("_C*.so"))
    if not libs:
        raise FileNotFoundError("kron_attn._C is not built: pip install --no-build-isolation -e .")
    return libs[0]


def describe(mangled: str) -> tuple[str, int | None, str] | None:
    kind = _KIND.search(mangled)
    if kind is None:
        return None
    d = _HEAD_DIM.search(mangled)
    dtype = "bf16" if "bfloat16" in mangled else "fp16"
    return kind[1], int(d[1]) if d else None, dtype


def resource_usage(text: str, arch: int) -> dict[str, Resources]:
    """Per function of one cubin's ``cuobjdump --dump-resource-usage``. On sm_90 and later the
    reported shared memory includes the 1 KB the driver reserves per CTA; it is taken out."""
    out, name = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Function "):
            name = line[len("Function ") :].rstrip(":")
        elif name and (m := _USAGE.search(line)):
            reg, stack, shared, local = (int(x) for x in m.groups())
            reserved = occupancy.RESERVED_SMEM if arch >= 90 else 0
            out[name] = Resources(reg, stack, local, max(shared - reserved, 0))
            name = None
    return out


def cubin_resources(tools: Tools, cubin: Path, arch: int) -> dict[str, Resources]:
    """Per function of a cubin, what ``cuobjdump --dump-resource-usage`` says."""
    run = subprocess.run([str(tools.cuobjdump), "--dump-resource-usage", str(cubin)], check=True, capture_output=True)
    return resource_usage(run.stdout.decode(), arch)


def cubins(tools: Tools, lib: Path, workdir: Path) -> dict[int, list[Path]]:
    """The library's kernel cubins by architecture (cuobjdump -xelf)."""
    listing = subprocess.run([str(tools.cuobjdump), "--list-elf", str(lib)], check=True, capture_output=True, text=True)
    names = re.findall(r"ELF file\s+\d+:\s+(\S+\.cubin)", listing.stdout)
    subprocess.run([str(tools.cuobjdump), "-xelf", "all", str(lib)], check=True, capture_output=True, cwd=workdir)
    by_arch: dict[int, list[Path]] = {}
    for name in names:
        arch = int(re.search(r"\.sm_(\d+)", name)[1])
        by_arch.setdefault(arch, []).append(workdir / name)
    return by_arch


def kernels(tools: Tools, lib: Path | None = None, with_sass: bool = True) -> list[Kernel]:
    """Every kernel of the library, every architecture it holds."""
    lib = lib or library()
    found: list[Kernel] = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, files in sorted(cubins(tools, lib, Path(tmp)).items()):
            for cubin in files:
                funcs = sass.parse(sass.disassemble(cubin, tools.nvdisasm)) if with_sass else {}
                for mangled, res in cubin_resources(tools, cubin, arch).items():
                    what = describe(mangled)
                    if what is None:
                        continue
                    found.append(Kernel(what[0], arch, what[1], what[2], res, funcs.get(mangled)))
    return found


def launches(frames: int = FRAMES) -> dict[tuple[str, int], dict]:
    """(kernel, head dim) -> threads, dynamic shared memory, tile: what the extension exports."""
    from kron_attn import _C

    return {(k["kernel"], k["head_dim"]): k for k in _C.cuda_launches(frames)}


def cases() -> tuple[sass.Case, sass.Case]:
    """The two iterations counted: a FULL tile (no mask code on the path) and a PARTIAL tile whose
    rows and columns each lie within two frames (the common case: more tokens per frame than a tile
    has rows or columns). Both load the next tile."""
    mask = CSRC / "mask.h"
    through_mask = sass.function_span(mask, "tile_mask")
    two_frames = sass.function_span(mask, "row_columns")
    many_frames = sass.function_span(mask, "row_columns_many_frames")
    loads = (("LDGSTS", 1),)
    return (
        sass.Case("FULL", avoid=(through_mask,), opcodes=loads),
        sass.Case("PARTIAL", through=(two_frames,), avoid=(many_frames,), opcodes=loads),
    )


LOOPS = {"fwd_kernel": ("fwd_kernel.h", 1), "bwd_kv_kernel": ("bwd_kernel.h", 1), "bwd_q_kernel": ("bwd_kernel.h", 2)}


def loop_line(kernel: str) -> sass.Location:
    header, occurrence = LOOPS[kernel]
    return sass.marker_line(CSRC / header, LOOP_MARKER, occurrence)
