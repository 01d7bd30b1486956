// The one way the kernels are launched: on the GPU with their dynamic shared memory, or, when
// compiled for the SIMT emulator (KRON_ATTN_EMULATE), on the CPU through ../cuda_emu/simt.h.
#pragma once

#include <c10/util/Exception.h>
#include <stdint.h>

#ifdef KRON_ATTN_EMULATE
#include "../cuda_emu/simt.h"
#else
#include <c10/cuda/CUDAException.h>
#endif

namespace kron_attn::cuda {

template <class... KernelArgs, class... Args>
void launch_kernel(void (*kernel)(KernelArgs...), const char* name, int64_t blocks, int threads, size_t smem,
                   cudaStream_t stream, const Args&... args) {
  TORCH_CHECK(blocks <= INT32_MAX, "kron_attn: too many blocks for ", name, ": ", blocks);
#ifdef KRON_ATTN_EMULATE
  (void)stream;
  auto body = [&] { kernel(args...); };
  const std::string fault = emu::run({name, {static_cast<unsigned>(blocks)}, {static_cast<unsigned>(threads)}, smem}, body);
  TORCH_CHECK(fault.empty(), fault);
#else
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<static_cast<unsigned>(blocks), threads, smem, stream>>>(args...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
}

}  // namespace kron_attn::cuda
