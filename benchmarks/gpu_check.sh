#!/usr/bin/env bash
# GPU check (DESIGN §7): on a fresh GPU machine with no network, build the extension, run the
# GPU tests, a compute-sanitizer pass when a CUDA kernel exists, and the benchmark table.
# Everything goes into one folder:   bash benchmarks/gpu_check.sh OUTDIR
# Uses the torch, Triton, pytest and pytest-benchmark already installed; downloads nothing.
set -u
out=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
say() { echo "[gpu_check $(date +%T)] $*" | tee -a "$out/summary.txt"; }

nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || say "nvidia-smi failed"
python - > "$out/versions.txt" 2>&1 <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None)
try:
    import triton; print("triton", triton.__version__)
except ImportError:
    print("triton missing")
PY
cat "$out/versions.txt" >> "$out/summary.txt"

arch=$(python -c 'import torch; c = torch.cuda.get_device_capability(); print(f"{c[0]}.{c[1]}")' 2>/dev/null || echo "9.0")
say "building for sm_${arch/./}"
# Editable: the built library lands in the tree, so tests and benchmarks run from here.
if TORCH_CUDA_ARCH_LIST="$arch" KRON_ATTN_CUDA=1 timeout 420 pip install --no-build-isolation --no-deps -v -e . \
    > "$out/build.log" 2>&1; then
  say "build ok"
  grep -E "registers|spill|smem" "$out/build.log" > "$out/ptxas.txt" || true
else
  say "build FAILED (see build.log)"
fi

# The kron_attn suites only: the image has no open_clip for the claver tests.
timeout 300 python -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_triton.py tests/test_ops.py tests/test_attention.py \
    tests/test_errors.py tests/test_module.py > "$out/tests.log" 2>&1
say "tests: $(tail -n 1 "$out/tests.log")"

# The small shape covers a partial last tile (N = 111), the self term (kmct) and every kernel
# (forward, delta, dK/dV, dQ); synccheck checks the barriers. About 1.5 min each at most.
if ls csrc/cuda/inst/*.cu > /dev/null 2>&1 && command -v compute-sanitizer > /dev/null; then
  for tool in memcheck racecheck synccheck; do
    ( timeout 100 compute-sanitizer --tool "$tool" python -c "
import torch, kron_attn
q, k, v = (torch.randn(1, 2, 3 * 37, 64, device='cuda', dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
kron_attn.attention(q, k, v, frames=3, layout='kmct', backend='cuda').sum().backward()
torch.cuda.synchronize()" > "$out/sanitizer-$tool.log" 2>&1 )
    say "compute-sanitizer $tool: $(grep -E 'ERROR SUMMARY' "$out/sanitizer-$tool.log" || echo 'no summary')"
  done
else
  say "compute-sanitizer skipped: no CUDA kernel in csrc/cuda yet, or the tool is missing"
fi

timeout 300 python -m benchmarks.table --device cuda --dtype bfloat16 --batch 8 --rounds 10 --memory \
    > "$out/table.md" 2> "$out/table.err"
say "benchmark table: $(grep -c '^| b\|^| l' "$out/table.md" 2>/dev/null || echo 0) rows (table.md)"

# End to end (issue 7): a CLAVER-B/16 training step, Kronecker attention against the original
# nn.MultiheadAttention + dense mask, 8 and 32 frames, bf16, with the largest batch each fits.
# Needs open_clip, which the GPU image lacks: carry its wheels (device README) and put them on
# PYTHONPATH before calling this script.
if python -c "import open_clip" > /dev/null 2>&1; then
  timeout 240 python -m benchmarks.train_step --frames 8,32 --batch 8 --steps 3 --max-batch \
      > "$out/train_step.md" 2> "$out/train_step.err"
  say "training step: $(grep -c '^| [0-9]' "$out/train_step.md" 2>/dev/null || echo 0) rows (train_step.md)"
else
  say "training step skipped: open_clip is not importable (carry its wheels)"
fi
