// backend="cuda_emu": the CUDA kernels (csrc/cuda), compiled for the host, run on CPU tensors by
// the SIMT emulator. The ops kron_attn::cuda_emu_fwd / cuda_emu_bwd take the host logic of the
// CUDA ops unchanged (op_host.h: checks, dtypes, parameters, dispatch); only where the tensors
// live and how a launch runs differ. Their schemas are those of every backend (csrc/kron_attn.cpp).
#include <torch/library.h>

#include <optional>

#include "../cuda/op_host.h"
#include "simt.h"

namespace kron_attn::cuda {
namespace {

// Bytes from a tensor's first element to one past its last (strides >= 0).
size_t extent_bytes(const at::Tensor& x) {
  if (x.numel() == 0) return 0;
  int64_t last = 0;
  for (int64_t d = 0; d < x.dim(); ++d) last += (x.size(d) - 1) * x.stride(d);
  return static_cast<size_t>(last + 1) * x.element_size();
}

struct Emulator {
  static void check(const char* op, const at::Tensor& q) {
    TORCH_CHECK(q.device().is_cpu(), op, ": backend='cuda_emu' runs the CUDA kernels on CPU tensors, got q on ",
                q.device());
  }
  static cudaStream_t stream() { return nullptr; }
  // The launches may touch these tensors and nothing else of global memory.
  class Scope {
   public:
    Scope(const at::Tensor&, NamedTensors tensors) {
      TORCH_CHECK(tensors.size() <= kMax, "kron_attn cuda_emu: too many tensors for one launch");
      for (const NamedTensor& t : tensors) {
        buffers_[count_++] = {t.name, t.tensor.data_ptr(), extent_bytes(t.tensor), t.writable};
      }
      scope_.emplace(buffers_, count_);
    }

   private:
    static constexpr size_t kMax = 16;
    emu::Buffer buffers_[kMax];
    int count_ = 0;
    std::optional<emu::BufferScope> scope_;
  };
};

}  // namespace
}  // namespace kron_attn::cuda

TORCH_LIBRARY_IMPL(kron_attn, CPU, m) {
  m.impl("cuda_emu_fwd", &kron_attn::cuda::attention_fwd<kron_attn::cuda::Emulator>);
  m.impl("cuda_emu_bwd", &kron_attn::cuda::attention_bwd<kron_attn::cuda::Emulator>);
}
