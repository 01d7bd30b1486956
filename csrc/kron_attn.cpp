// The op schemas: the only place they are declared. Each backend with compiled or Python kernels
// has one forward/backward pair of the same signature, named <backend op>_fwd / _bwd:
//   attention_*  the CPU kernel (csrc/cpu/) and the CUDA kernel (csrc/cuda/), by dispatch key;
//   cuda_emu_*   the CUDA kernels run on CPU tensors by the SIMT emulator (csrc/cuda_emu/);
//   triton_*     the Triton kernels (kron_attn/triton/ops.py registers them from Python).
// kron_attn/backends.py holds the matching records (and registers fake kernels and autograd).
#include <torch/library.h>

#include <string>

TORCH_LIBRARY(kron_attn, m) {
  for (const std::string op : {"attention", "cuda_emu", "triton"}) {
    // out = softmax(scale * q kᵀ + mask) v over tokens that the frame layout allows (and each
    // token itself); lse = row log-sum-exp of the scaled scores in natural log units, float32
    // (float64 for float64 inputs).
    m.def((op + "_fwd(Tensor q, Tensor k, Tensor v, Tensor layout, float scale) -> (Tensor out, Tensor lse)").c_str());
    // dlse: the gradient of lse, when lse is used downstream (it enters as delta - dlse).
    m.def((op + "_bwd(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor layout, "
                "float scale, Tensor? dlse=None) -> (Tensor dq, Tensor dk, Tensor dv)")
              .c_str());
  }
  // The schedule of fixed (block_m x block_n) tiles: per query tile the key tiles to visit and
  // their kinds (1 full, 2 partial), and per key tile the query tiles (for a backward over keys).
  // Returns (q_count, q_tiles, q_kinds, k_count, k_tiles, k_kinds), int32 on the CPU, lists
  // padded with -1.
  m.def("block_schedule(Tensor layout, int tokens, int block_m, int block_n) -> Tensor[]");
}
