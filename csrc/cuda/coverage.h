// What the CUDA kernels cover, stated once. The op wrappers (op_host.h) check inputs against it,
// the extension exports it (kron_attn._C.cuda_coverage()) and kron_attn's backend choice reads
// that; the emulated kernels (backend "cuda_emu") are the same kernels and cover the same.
#pragma once

namespace kron_attn::cuda {

// Head dims with a compiled kernel (inst/, generate_instantiations.py).
constexpr int kHeadDims[] = {32, 64, 96, 128};
// The layout travels inside the kernel parameters as bits (params.h): 2 KiB at 128 frames.
constexpr int kMaxFrames = 128;
// mma.sync with bf16, cp.async and ldmatrix need sm_80 or newer.
constexpr int kMinComputeCapability = 80;
// Input dtypes: the first two run natively, float32 is computed in bfloat16 (op_host.h).
constexpr const char* kDtypes[] = {"bfloat16", "float16", "float32"};

}  // namespace kron_attn::cuda
