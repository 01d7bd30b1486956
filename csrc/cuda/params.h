// Plain parameter structs of the CUDA kernels: pointers, 64-bit strides, sizes, and the frame
// layout packed as bits. Passed by value as __grid_constant__ kernel parameters, so a launch
// needs no device allocation and no host-to-device copy (CUDA-graph capture works).
#pragma once

#include <stdint.h>

#include "coverage.h"

namespace kron_attn::cuda {

// The layout in the kernel parameters: row t is kLayoutRowWords 32-bit words, bit (u % 32) of
// word (u / 32) is layout[t][u] (schedule.h's packing with a fixed row pitch). 128 frames make
// 2 KiB, well under the 4 KiB parameter limit of every CUDA version.
constexpr int kLayoutRowWords = kMaxFrames / 32;

struct LayoutBits {
  uint32_t words[kMaxFrames * kLayoutRowWords];
};

// Strides in elements of a (B, H, N, D) tensor whose last dimension is contiguous.
struct Strides {
  int64_t batch, head, row;
};

struct FwdParams {
  const void* q;
  const void* k;
  const void* v;
  void* out;   // (B, H, N, D) contiguous, element type of q
  float* lse;  // (B, H, N) contiguous, natural log
  Strides q_stride, k_stride, v_stride;
  int heads, tokens_total, frames, tokens;  // H, N, T, L
  float scale_log2;                         // scale * log2(e): scores are kept in base 2
  LayoutBits layout;
};

struct BwdParams {
  const void* q;
  const void* k;
  const void* v;
  const void* dout;
  const void* out;     // (B, H, N, D) contiguous forward output
  const float* lse;    // (B, H, N) contiguous
  const float* dlse;   // (B, H, N) contiguous gradient of lse, or null
  float* delta;        // (B, H, N) contiguous workspace: rowsum(dO * O) - dlse, written first
  float* lse2;         // (B, H, N) contiguous workspace: lse · log2 e, written with delta
  void* dq;            // (B, H, N, D) contiguous outputs
  void* dk;
  void* dv;
  Strides q_stride, k_stride, v_stride, do_stride;
  int heads, tokens_total, frames, tokens;
  float scale;       // dq, dk carry the score scale
  float scale_log2;  // scale * log2(e): P = 2^(S · scale_log2 - lse2)
  LayoutBits layout;
};

}  // namespace kron_attn::cuda
