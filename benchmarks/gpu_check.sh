#!/usr/bin/env bash
# GPU check in two stages, each at most 6 minutes on an H100/H200,
# on a fresh machine with no network. Logs and results go into OUTDIR (summary.txt first).
#
#   bash benchmarks/gpu_check.sh 1 OUTDIR   build for the card (all cores), the CUDA and Triton GPU
#                                           tests, compute-sanitizer memcheck / racecheck / synccheck
#                                           at head dim 64 and 128 (the 4-warp forward and the backward
#                                           tiles)
#   bash benchmarks/gpu_check.sh 2 OUTDIR   the bf16 benchmark table against the peers and the
#                                           CLAVER-B/16 training step at 8 and 32 frames
#
# Stage 2 rebuilds only if the machine is a fresh one, and needs open_clip, which the GPU image
# lacks: run `bash tools/gpu_wheels.sh` on a machine with network first and copy the `.whl/` it
# fills along with the tree.
set -u
stage=${1:?usage: bash benchmarks/gpu_check.sh 1|2 OUTDIR}
out=${2:?usage: bash benchmarks/gpu_check.sh 1|2 OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
say() { echo "[gpu_check $stage $(date +%T)] $*" | tee -a "$out/summary.txt"; }

build() {
  local arch
  arch=$(python -c 'import torch; c = torch.cuda.get_device_capability(); print(f"{c[0]}.{c[1]}")' 2>/dev/null || echo "9.0")
  say "building for sm_${arch/./} with $(nproc) jobs"
  # Editable: the built library lands in the tree, so tests and benchmarks run from here.
  if TORCH_CUDA_ARCH_LIST="$arch" KRON_ATTN_CUDA=1 MAX_JOBS=$(nproc) timeout 180 \
      pip install --no-build-isolation --no-deps -v -e . > "$out/build.log" 2>&1; then
    say "build ok"
    grep -E "registers|spill|smem" "$out/build.log" > "$out/ptxas.txt" || true
  else
    say "build FAILED (see build.log)"
  fi
}

if [ "$stage" = 1 ]; then
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
  build

  # The kron_attn suites only (the image has no open_clip for the claver tests), in 4 processes
  # where pytest-xdist is there (the image has it).
  par=$(python -c "import xdist" 2> /dev/null && echo "-n 4")
  timeout 120 python -m pytest -q -p no:cacheprovider $par tests/test_cuda.py tests/test_triton.py tests/test_ops.py \
      tests/test_attention.py tests/test_errors.py tests/test_module.py > "$out/tests.log" 2>&1
  say "tests: $(tail -n 1 "$out/tests.log")"

  # A partial last tile (N = 111), the self term (kmct) and every kernel (forward, delta, dK/dV,
  # dQ) at both head dims, in one process per tool; synccheck checks the barriers.
  if command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck synccheck; do
      ( timeout 40 compute-sanitizer --tool "$tool" python -c "
import torch, kron_attn
for d in (64, 128):
    q, k, v = (torch.randn(1, 2, 3 * 37, d, device='cuda', dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    kron_attn.attention(q, k, v, frames=3, layout='kmct', backend='cuda').sum().backward()
torch.cuda.synchronize()" > "$out/sanitizer-$tool.log" 2>&1 )
      say "compute-sanitizer $tool: $(grep -E 'ERROR SUMMARY' "$out/sanitizer-$tool.log" || echo 'no summary (see the log)')"
    done
  else
    say "compute-sanitizer skipped: the tool is missing"
  fi
elif [ "$stage" = 2 ]; then
  python -c "import kron_attn, sys; sys.exit(not kron_attn._C.has_cuda())" 2> /dev/null || build
  if ls .whl/*.whl > /dev/null 2>&1; then
    python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        > "$out/wheels.log" 2>&1 && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi

  timeout 200 python -m benchmarks.table --device cuda --dtype bfloat16 --batch 8 --rounds 10 --memory \
      > "$out/table.md" 2> "$out/table.err"
  say "benchmark table: $(grep -c '^| b\|^| l' "$out/table.md" 2>/dev/null || echo 0) rows (table.md)"

  # End to end: a CLAVER-B/16 training step, Kronecker attention against the original
  # nn.MultiheadAttention + dense mask, 8 and 32 frames, bf16, with the largest batch each fits.
  if python -c "import open_clip" > /dev/null 2>&1; then
    timeout 150 python -m benchmarks.train_step --frames 8,32 --batch 8 --steps 3 --max-batch \
        > "$out/train_step.md" 2> "$out/train_step.err"
    say "training step: $(grep -c '^| [0-9]' "$out/train_step.md" 2>/dev/null || echo 0) rows (train_step.md)"
  else
    say "training step skipped: open_clip is not importable (prepare .whl/ with tools/gpu_wheels.sh on a machine with network and copy it here)"
  fi
else
  echo "stage must be 1 or 2, got $stage" >&2
  exit 2
fi
