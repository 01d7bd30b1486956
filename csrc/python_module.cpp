// The Python extension module kron_attn._C: importing it registers the ops (torch.ops.kron_attn)
// and exposes facts about the build. pybind11 alone, not torch/extension.h: nothing here touches a
// tensor, and torch's headers would take most of the extension's compile time.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "constants.h"
#include "cpu/cpu_isa.h"
#include "cuda/coverage.h"
#include "cuda/kernel_traits.h"
#include "schedule.h"

#ifdef KRON_ATTN_WITH_CUDA
#include "cuda/device_check.h"
#endif

namespace {

// How the CUDA kernels of every covered head dim are launched at `frames` frames (kernel_traits.h):
// what the static profile needs to compute occupancy.
template <size_t... I>
pybind11::list cuda_launches(int frames, std::index_sequence<I...>) {
  namespace kc = kron_attn::cuda;
  pybind11::list out;
  auto add = [&](const char* kernel, int d, int threads, size_t smem, int rows, int cols) {
    pybind11::dict k;
    k["kernel"] = kernel;
    k["head_dim"] = d;
    k["threads"] = threads;
    k["smem"] = smem;
    k["block"] = pybind11::make_tuple(rows, cols);
    out.append(k);
  };
  auto one = [&](auto dim) {
    constexpr int D = decltype(dim)::value;
    using F = kc::FwdTraits<D>;
    using KV = kc::BwdKVTraits<D>;
    using Q = kc::BwdQTraits<D>;
    add("fwd_kernel", D, F::kThreads, F::smem_bytes(frames), F::kBlockM, F::kBlockN);
    add("bwd_kv_kernel", D, KV::kThreads, KV::smem_bytes(frames), KV::kBlockN, KV::kBlockM);
    add("bwd_q_kernel", D, Q::kThreads, Q::smem_bytes(frames), Q::kBlockM, Q::kBlockN);
  };
  (one(std::integral_constant<int, kc::kHeadDims[I]>{}), ...);
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Kronecker-mask attention kernels (ops live in torch.ops.kron_attn)";
  m.attr("max_head_dim") = kron_attn::kMaxHeadDim;  // the widest head the ops take
  m.def("cpu_isa", &kron_attn::cpu::isa_name, "Instruction set the CPU kernel runs with");
  m.def("has_cuda", []() {
#ifdef KRON_ATTN_WITH_CUDA
    return true;
#else
    return false;
#endif
  }, "Whether the CUDA kernel was compiled");
  m.def("cuda_coverage", []() {
    namespace kc = kron_attn::cuda;
    pybind11::dict d;
    d["head_dims"] = std::vector<int>(std::begin(kc::kHeadDims), std::end(kc::kHeadDims));
    d["max_frames"] = kc::kMaxFrames;
    d["dtypes"] = std::vector<std::string>(std::begin(kc::kDtypes), std::end(kc::kDtypes));
    d["min_compute_capability"] = pybind11::make_tuple(kc::kMinComputeCapability / 10, kc::kMinComputeCapability % 10);
#ifdef KRON_ATTN_WITH_CUDA
    d["archs"] = std::string(kc::kBuiltArchs);
#else
    d["archs"] = std::string();
#endif
    return d;
  }, "What the CUDA kernels cover: head dims, frames, dtypes, compute capability, compiled architectures");
  m.def("cuda_launches", [](int frames) {
    return cuda_launches(frames, std::make_index_sequence<std::size(kron_attn::cuda::kHeadDims)>{});
  }, pybind11::arg("frames"),
     "Per CUDA kernel and head dim: threads per CTA, dynamic shared memory at `frames` frames, tile (rows, columns)");
  m.def("cuda_device_problem", [](int device) -> std::string {
#ifdef KRON_ATTN_WITH_CUDA
    return kron_attn::cuda::device_problem(device);
#else
    (void)device;
    return "this kron_attn build has no CUDA kernel";
#endif
  }, "'' when the CUDA kernels can run on this device index, else the reason they cannot");
  m.def("tile_kinds", []() {
    pybind11::dict d;
    d["skip"] = static_cast<int>(kron_attn::TILE_SKIP);
    d["full"] = static_cast<int>(kron_attn::TILE_FULL);
    d["partial"] = static_cast<int>(kron_attn::TILE_PARTIAL);
    return d;
  }, "The tile kinds kron_attn::block_schedule reports");
}
