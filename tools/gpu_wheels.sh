#!/usr/bin/env bash
# The wheels stage 2 of benchmarks/gpu_check.sh needs on the GPU machine, which has no network and
# no open_clip: open_clip_torch and the two of its requirements that the machine's image lacks
# (ftfy, wcwidth; the rest, timm and huggingface_hub included, are there), for Python 3.12, at the
# versions this checkout's .venv uses, into .whl/ (ignored). Copy `.whl/` to the GPU machine with the
# source tree.
#
#   bash tools/gpu_wheels.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-.venv/bin/python}
mkdir -p .whl
for name in open_clip_torch ftfy wcwidth; do
  version=$("$py" -m pip show "$name" | sed -n 's/^Version: //p')
  [ -n "$version" ] || { echo "gpu_wheels: $name is not installed in $py's environment" >&2; exit 2; }
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_17_x86_64 -d .whl "$name==$version"
done
ls -l .whl
