// Asks the CUDA runtime for one kernel's attributes: it fails when the binary holds no image
// (neither SASS for the device's architecture nor PTX it can compile) for the current device.
#include "bwd_kernel.h"
#include "device_check.h"

namespace kron_attn::cuda {

cudaError_t kernel_image_status() {
  cudaFuncAttributes attributes;
  return cudaFuncGetAttributes(&attributes, delta_kernel<__half>);
}

}  // namespace kron_attn::cuda
