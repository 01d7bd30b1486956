// The CUDA implementation of the kron_attn ops: the shared host logic of op_host.h on CUDA
// tensors, with a device guard, the current stream, and a check that the device can run the
// compiled kernels. Host code only, compiled by the host compiler: through nvcc the ATen headers
// alone took minutes of CI time.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // not ATen/cuda/CUDAContext.h: that needs the cuBLAS/cuSPARSE headers
#include <torch/library.h>

#include <mutex>
#include <string>
#include <vector>

#include "device_check.h"
#include "op_host.h"

namespace kron_attn::cuda {

std::string device_problem(int device) {
  static std::mutex mu;
  static std::vector<std::string> known;  // per device index; "?" until checked
  std::lock_guard<std::mutex> lock(mu);
  if (device >= static_cast<int>(known.size())) known.resize(device + 1, "?");
  if (known[device] != "?") return known[device];
  int major = 0, minor = 0;
  cudaError_t err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return "cuda:" + std::to_string(device) + " cannot be queried: " + cudaGetErrorString(err);
  }
  const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  std::string problem;
  if (major * 10 + minor < kMinComputeCapability) {
    problem = "the kron_attn CUDA kernel needs compute capability " + std::to_string(kMinComputeCapability / 10) +
              "." + std::to_string(kMinComputeCapability % 10) + " or newer (mma.sync bf16, cp.async); cuda:" +
              std::to_string(device) + " is " + std::to_string(major) + "." + std::to_string(minor);
  } else if (kernel_image_status() != cudaSuccess) {
    (void)cudaGetLastError();  // clear the (non-sticky) error the failed lookup recorded
    problem = "this kron_attn build has no kernel image for cuda:" + std::to_string(device) + " (compute capability " +
              std::to_string(major) + "." + std::to_string(minor) + "; built for " + kBuiltArchs +
              "); rebuild with TORCH_CUDA_ARCH_LIST=\"" + std::to_string(major) + "." + std::to_string(minor) + "\"";
  }
  known[device] = problem;
  return problem;
}

namespace {

struct Cuda {
  static void check(const char* op, const at::Tensor& q) {
    TORCH_CHECK(q.is_cuda(), op, ": q must be a CUDA tensor, got one on ", q.device());
    const std::string problem = device_problem(q.device().index());
    TORCH_CHECK(problem.empty(), op, ": ", problem);
  }
  static cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream(); }
  struct Scope {
    Scope(const at::Tensor& q, NamedTensors) : guard(q.device()) {}
    c10::cuda::CUDAGuard guard;
  };
};

}  // namespace
}  // namespace kron_attn::cuda

TORCH_LIBRARY_IMPL(kron_attn, CUDA, m) {
  m.impl("attention_fwd", &kron_attn::cuda::attention_fwd<kron_attn::cuda::Cuda>);
  m.impl("attention_bwd", &kron_attn::cuda::attention_bwd<kron_attn::cuda::Cuda>);
}
