#!/usr/bin/env bash
# Configures, builds and runs the C++ tests (CTest) against the libtorch of the active Python.
# A CUDA build of torch makes find_package(Torch) look for the CUDA toolkit: point it at
# CUDA_HOME and at the NVRTC library that the torch wheel ships.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-cmake-build}
prefix=$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')
args=(-DCMAKE_PREFIX_PATH="$prefix")
if python -c 'import sys, torch; sys.exit(torch.version.cuda is None)'; then
  nvrtc=$(python -c 'import glob, os, torch; d = os.path.dirname(torch.__file__); print((sorted(glob.glob(d + "/../nvidia/*/lib/libnvrtc.so*")) + [""])[0])')
  args+=(-DCUDA_TOOLKIT_ROOT_DIR="${CUDA_HOME:-/usr/local/cuda}")
  # Named, so configuring probes no GPU: the build's default (csrc/build.txt).
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$(sed -n 's/^cuda_archs: *//p' csrc/build.txt | tr ' ' ';')}"
  [ -n "$nvrtc" ] && args+=(-DCUDA_nvrtc_LIBRARY="$nvrtc")
fi
cmake -S . -B "$build" -G Ninja "${args[@]}" > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
# The tests' executables and what they link, not the emulator library (no C++ test loads it).
cmake --build "$build" -j2 --target test_schedule test_simt test_ops
ctest --test-dir "$build" --output-on-failure
