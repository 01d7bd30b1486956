#!/usr/bin/env bash
# Checks `pip install .` end to end in throw-away virtual environments: into one that already
# has torch (which must stay, with the extension built against it), with --no-build-isolation,
# and into one without torch; then that a build imported under another torch fails with the
# one-line message. It downloads torch wheels (several GB), so it is not part of `make test`.
#
#   bash tools/check_install.sh [PYTHON] [WORKDIR]        (defaults: python3.12, a temp dir)
#   OLD_TORCH=2.11.0 NEW_TORCH=2.14.1 bash tools/check_install.sh
set -euo pipefail
python=${1:-python3.12}
work=${2:-$(mktemp -d)}
old=${OLD_TORCH:-2.11.0}
new=${NEW_TORCH:-2.14.1}
src=$(cd "$(dirname "$0")/.." && pwd)
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # one architecture: minutes, not tens
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
say() { echo "[check_install $(date +%T)] $*"; }
fail() { say "FAIL: $*"; exit 1; }

"$python" --version > /dev/null 2>&1 || fail "no Python at '$python'"
rm -rf "$work/src" && git clone -q "$src" "$work/src"  # what a user clones: committed files only
say "python: $($python --version); source: $(git -C "$work/src" log --oneline -1); work: $work"

venv() {  # venv NAME: a fresh virtual environment, its python printed
  rm -rf "$work/$1" && "$python" -m venv "$work/$1" >&2 && "$work/$1/bin/python" -m pip install -q --upgrade pip >&2  # newest pip: its build isolation
  [ -x "$work/$1/bin/python" ] || fail "could not make a virtual environment with $python"
  echo "$work/$1/bin/python"
}
torch_version() { "$1" -c 'import torch; print(torch.__version__)'; }
check_import() {  # check_import PY: kron_attn imports, runs, and has the CUDA kernel when nvcc is there
  (cd "$work" && "$1" -c '
import torch, kron_attn
q = torch.randn(1, 2, 3 * 5, 32)
out = kron_attn.attention(q, q, q, frames=3)
print("kron_attn", kron_attn.available_backends(), "has_cuda", kron_attn._C.has_cuda())
assert kron_attn._C.has_cuda(), "no CUDA kernel in this build"
')
}

# 1. An environment with torch $old: pip install . keeps it and builds against it.
py=$(venv with_old)
"$py" -m pip install -q "torch==$old"
say "with torch $old: pip install ."
start=$(date +%s)
"$py" -m pip install -q "$work/src" || fail "pip install . with torch $old"
say "installed in $(( $(date +%s) - start )) s; torch is now $(torch_version "$py")"
[ "$(torch_version "$py" | cut -d+ -f1)" = "$old" ] || fail "torch $old was replaced"
check_import "$py" || fail "import after pip install . with torch $old"
say "torchvision: $("$py" -c 'import torchvision; print(torchvision.__version__)')"

# 2. The same build under another torch: one line naming both versions.
"$py" -m pip install -q "torch==$new"
msg=$(cd "$work" && "$py" -c 'import kron_attn' 2>&1 | tail -n 1 || true)
say "after switching to torch $new: $msg"
case "$msg" in
  *"built against torch $old"*"but torch $new"*"rebuild it with: pip install"*) ;;
  *) fail "expected the one-line version message" ;;
esac

# 3. An environment with torch $new, building without isolation.
py=$(venv no_isolation)
"$py" -m pip install -q "torch==$new" setuptools wheel ninja
say "with torch $new: pip install --no-build-isolation ."
start=$(date +%s)
"$py" -m pip install -q --no-build-isolation "$work/src" || fail "pip install --no-build-isolation ."
say "installed in $(( $(date +%s) - start )) s; torch is now $(torch_version "$py")"
[ "$(torch_version "$py" | cut -d+ -f1)" = "$new" ] || fail "torch $new was replaced"
check_import "$py" || fail "import after pip install --no-build-isolation ."

# 4. An environment without torch: pip install . brings one.
py=$(venv without_torch)
say "without torch: pip install ."
start=$(date +%s)
"$py" -m pip install -q "$work/src" || fail "pip install . without torch"
say "installed in $(( $(date +%s) - start )) s; torch is now $(torch_version "$py")"
check_import "$py" || fail "import after pip install . without torch"

say "all checks passed"
