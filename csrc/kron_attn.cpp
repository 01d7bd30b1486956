// The op schemas: the only place they are declared. Backends add implementations with
// TORCH_LIBRARY_IMPL in csrc/cpu/ and csrc/cuda/.
#include <torch/library.h>

TORCH_LIBRARY(kron_attn, m) {
  // out = softmax(scale * q kᵀ + mask) v over tokens that the frame layout allows (and
  // each token itself); lse = row log-sum-exp of the scaled scores in natural log units, float32
  // (float64 for float64 inputs).
  m.def("attention_fwd(Tensor q, Tensor k, Tensor v, Tensor layout, float scale) -> (Tensor out, Tensor lse)");
  // dlse: the gradient of lse, when lse is used downstream (it enters as delta - dlse).
  m.def(
      "attention_bwd(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor layout, "
      "float scale, Tensor? dlse=None) -> (Tensor dq, Tensor dk, Tensor dv)");
  // The schedule of fixed (block_m x block_n) tiles: per query tile the key tiles to visit and
  // their kinds (1 full, 2 partial), and per key tile the query tiles (for a backward over keys).
  // Returns (q_count, q_tiles, q_kinds, k_count, k_tiles, k_kinds), int32 on the CPU, lists
  // padded with -1.
  m.def("block_schedule(Tensor layout, int tokens, int block_m, int block_n) -> Tensor[]");
}
