// The Python extension module kron_attn._cuda_emu: importing it registers the emulated ops
// (attention_emu.cpp) and exposes the emulator's settings. pybind11 alone: nothing here touches a
// tensor.
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>

#include "simt.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "The CUDA kernels run on the CPU by the SIMT emulator (ops torch.ops.kron_attn.cuda_emu_*)";
  m.def("set_schedule_seed", [](uint64_t seed) { kron_attn::emu::options().schedule_seed = seed; },
        "0: each CTA's threads run in index order; other seeds shuffle the order at every scheduling round");
  m.def("schedule_seed", []() { return kron_attn::emu::options().schedule_seed; });
  m.def("set_shared_limit", [](size_t bytes) { kron_attn::emu::options().shared_limit = bytes; },
        "Dynamic shared memory a block may ask for (default 101376 bytes: sm_86/89/120)");
  m.def("shared_limit", []() { return kron_attn::emu::options().shared_limit; });
}
