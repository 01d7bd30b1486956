"""Peak extra resident memory of one pass, measured in a fresh process (Linux).

    python -m benchmarks.peak_memory IMPL SHAPE LAYOUT MODE [BATCH]

Prints, in MiB, how far the resident set's high-water mark rises above the resident set just
before the pass (inputs, weights and warm-up already in place).
"""

import sys

from benchmarks.peers import make
from benchmarks.shapes import SHAPES


def status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    impl, shape, layout, mode = sys.argv[1:5]
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    step = make(impl, SHAPES[shape].with_batch(batch), layout, mode)
    step()  # one-time allocations (thread pools, compilation) are not the pass's memory
    before = status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    step()
    print(f"{status_mib('VmHWM') - before:.1f}")


if __name__ == "__main__":
    main()
