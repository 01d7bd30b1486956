// Interface between the CPU operator (attention_cpu.cpp, which sees torch) and the kernels
// (kernel_<isa>.cpp, compiled once per instruction set, which see no torch).
#pragma once

#include <stdint.h>

namespace kron_attn::cpu {

// A (B, H, N, D) tensor: strides in elements; the last dimension is contiguous.
template <class T>
struct Tensor4 {
  T* data;
  int64_t sb, sh, sn;
  T* row(int b, int h, int n) const { return data + b * sb + h * sh + n * sn; }
};

// T is the accumulation type: float (float32, and reduced precision converted beforehand) or
// double. Outputs are contiguous (B, H, N, D); lse is contiguous (B, H, N), type T, in natural
// log units.
template <class T>
struct FwdParams {
  Tensor4<const T> q, k, v;
  T* out;
  T* lse;
  const uint32_t* layout;  // packed bit rows (schedule.h)
  int B, H, N, D, frames, tokens;
  double scale;
};

template <class T>
struct BwdParams {
  Tensor4<const T> q, k, v, out, dout;
  const T* lse;
  const T* dlse;  // contiguous (B, H, N), the gradient of lse, or null
  T* dq;          // contiguous (B, H, N, D)
  T* dk_ws;  // (B * H * groups, N, padded(D)): partial dK of each query group
  T* dv_ws;  // the same for dV
  const uint32_t* layout;
  int B, H, N, D, frames, tokens, groups;
  double scale;
};

// Kernels of one instruction set. Forward work items are (b, h, query tile) with the tiles of
// FrameTiling::make(tokens, kQueryRows); backward work items are (b, h, query group), group g
// taking tiles g, g + groups, ... reduce sums the groups' partial dK, dV of items [begin, end)
// of (b, h, key token) into dk, dv (contiguous, same type). With one group and an unpadded head
// dimension the workspaces can be dk and dv themselves, and no reduction is needed.
struct IsaKernels {
  const char* name;
  void (*fwd_f)(const FwdParams<float>&, int64_t begin, int64_t end);
  void (*fwd_d)(const FwdParams<double>&, int64_t begin, int64_t end);
  void (*bwd_f)(const BwdParams<float>&, int64_t begin, int64_t end);
  void (*bwd_d)(const BwdParams<double>&, int64_t begin, int64_t end);
  void (*reduce_f)(const BwdParams<float>&, float* dk, float* dv, int64_t begin, int64_t end);
  void (*reduce_d)(const BwdParams<double>&, double* dk, double* dv, int64_t begin, int64_t end);
};

// Head dimensions are padded to a multiple of kPad inside the kernels (and in the workspace).
constexpr int kPad = 16;
static inline int64_t padded(int64_t d) { return (d + kPad - 1) / kPad * kPad; }

// Query-tile height of the CPU kernel: tiles never straddle a frame.
constexpr int kQueryRows = 64;
// Keys per step of the online softmax.
constexpr int kKeyCols = 256;

const IsaKernels& kernels_avx512();
const IsaKernels& kernels_avx2();
const IsaKernels& kernels_generic();

}  // namespace kron_attn::cpu
