// The Python extension module kron_attn._C: importing it registers the ops (torch.ops.kron_attn)
// and exposes facts about the build.
#include <torch/extension.h>

#include "cpu/cpu_isa.h"

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
}
