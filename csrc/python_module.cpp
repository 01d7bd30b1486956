// The Python extension module kron_attn._C: importing it registers the ops (torch.ops.kron_attn)
// and exposes facts about the build.
#include <torch/extension.h>

#include "cpu/cpu_isa.h"
#include "cuda/coverage.h"
#include "schedule.h"

#ifdef KRON_ATTN_WITH_CUDA
#include "cuda/device_check.h"
#endif

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Kronecker-mask attention kernels (ops live in torch.ops.kron_attn)";
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
