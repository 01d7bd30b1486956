"""pytest-benchmark timings on the CPU (B = 2): ``pytest benchmarks/ --benchmark-only``.

Shapes are the canonical ones with B = 2; set KRON_ATTN_BENCH_SHAPES=b16-8f,b32-8f to narrow.
For the ratio table with memory, run ``python -m benchmarks.table``.
"""

import os

import pytest

from benchmarks.peers import IMPLS, make
from benchmarks.shapes import SHAPES

NAMES = os.environ.get("KRON_ATTN_BENCH_SHAPES", ",".join(SHAPES)).split(",")


@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("impl", IMPLS + ("ours_module",))
@pytest.mark.parametrize("layout", ["kmt", "kmct"])
@pytest.mark.parametrize("shape", NAMES)
def test_cpu(benchmark, shape, layout, impl, mode):
    try:
        step = make(impl, SHAPES[shape].with_batch(2), layout, mode)
    except NotImplementedError as e:
        pytest.skip(str(e))
    step()  # warm-up (and compilation for FlexAttention)
    benchmark.pedantic(step, rounds=3, iterations=1)
