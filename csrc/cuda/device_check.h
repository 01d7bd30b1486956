// Whether a GPU can run this build's kernels (compiled only with the CUDA kernels).
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace kron_attn::cuda {

// The architectures this build carries (TORCH_CUDA_ARCH_LIST at build time, from setup.py).
#ifdef KRON_ATTN_CUDA_ARCHS
constexpr const char* kBuiltArchs = KRON_ATTN_CUDA_ARCHS;
#else
constexpr const char* kBuiltArchs = "unknown architectures";
#endif

// cudaSuccess when the current device has an image (SASS or PTX) of the kernels (image_check.cu).
cudaError_t kernel_image_status();

// "" when the kernels run on CUDA device `device`, else why not. Checked once per device.
std::string device_problem(int device);

}  // namespace kron_attn::cuda
