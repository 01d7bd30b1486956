"""The static GPU profile as a gate (no GPU needed; benchmarks/static_profile, BENCHMARKS.md):
the built CUDA kernels neither spill nor use local memory and keep their steady-state loops at
the instruction economy measured when they were rebuilt; the Triton kernels, compiled for sm_90 in
the configs the autotuner may choose at head dim 64, do not spill and use Hopper's warpgroup mma."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kron_attn import _C

ROOT = Path(__file__).resolve().parents[1]

sp = pytest.importorskip("benchmarks.static_profile.cuda")
from benchmarks.static_profile import sass, tools  # noqa: E402


def _tools():
    try:
        return tools.find()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def kernels():
    if not _C.has_cuda():
        pytest.skip("this build has no CUDA kernel")
    return sp.kernels(_tools())


def test_no_spills_or_local_memory(kernels):
    assert kernels
    bad = [
        (k.name, k.arch, k.head_dim, k.dtype, k.resources) for k in kernels if k.resources.stack or k.resources.local
    ]
    assert not bad, f"CUDA kernels with a stack frame or local memory (spills): {bad}"


# Instructions per mma of one FULL-tile iteration: the forward's bounds (FlashAttention-2, compiled
# the same way, takes 4.6 at D = 64 and 3.7 at D = 128), and for the backward kernels half of
# what they took before the rebuild (7.54 / 8.81 at D = 64, 5.83 / 6.86 at D = 128 on sm_80;
# 7.88 / 9.12 and 5.99 / 7.05 on sm_90).
BOUNDS = {
    ("fwd_kernel", 64): (5.5, 5.5),
    ("fwd_kernel", 128): (4.5, 4.5),
    ("bwd_kv_kernel", 64): (3.77, 3.94),
    ("bwd_kv_kernel", 128): (2.91, 2.99),
    ("bwd_q_kernel", 64): (4.40, 4.56),
    ("bwd_q_kernel", 128): (3.43, 3.52),
}


@pytest.mark.parametrize("name,head_dim", sorted(BOUNDS), ids=lambda x: str(x))
def test_steady_loop_economy(kernels, name, head_dim):
    full, partial = sp.cases()
    line = sp.loop_line(name)
    found = [k for k in kernels if k.name == name and k.head_dim == head_dim and k.dtype == "bf16"]
    assert found
    for k in found:
        bound = BOUNDS[(name, head_dim)][0 if k.arch < 90 else 1]
        f, p = (sass.count_iteration(k.function, line, case) for case in (full, partial))
        where = f"{name} sm_{k.arch} D={head_dim}"
        assert f.per_mma <= bound, f"{where}: {f.per_mma:.2f} instructions per mma > {bound}"
        if name == "fwd_kernel":
            assert p.instructions <= 1.3 * f.instructions, f"{where}: PARTIAL {p.instructions} > 1.3 x FULL"
        assert not sass.division_in_loop(k.function, line), f"{where}: division in the loop"


def test_triton_default_configs_sm90():
    """In a subprocess: the tests run Triton's interpreter, whose kernels cannot be compiled."""
    pytest.importorskip("triton")
    code = (
        "import json; from benchmarks.static_profile import triton_kernels as t; "
        "print(json.dumps([c.__dict__ for c in t.compile_all({90}, head_dims=(64,))]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.splitlines()[-1])
    assert {c["kernel"] for c in found} == {"fwd_kernel", "bwd_dkdv_kernel", "bwd_dq_kernel"}
    for c in found:
        what = f"{c['kernel']} ({c['warps']} warps, {c['stages']} stages)"
        assert c["stack"] == 0, f"{what} spills: {c['stack']} bytes of stack"
        assert c["mma"] == "HGMMA", f"{what} uses {c['mma']}, not HGMMA"
