// Global -> shared copies of the tiles the kernels stream, planned once per thread: each thread
// always copies the same 16-byte column chunk of the same rows of a tile, so its global pointer is
// set once per tile and advanced by a fixed stride per copy, and its shared addresses are
// constants (FlashAttention-2's habit: no index arithmetic per copy).
#pragma once

#include <stdint.h>

#include "device_utils.h"

namespace kron_attn::cuda {

// The largest power of two <= x.
constexpr int floor_pow2(int x) { return x < 2 ? 1 : 2 * floor_pow2(x / 2); }

// kRows rows of kD elements of one (b, h) slice -> a shared tile of pitch kD + 8, 16 bytes per
// cp.async. Thread tid copies chunk tid % kChunks of rows tid / kChunks + i * kRowStep, kRowStep
// being a power of two so that it divides the tile's rows; when the chunks of those rows do not
// fill the threads (D = 96: 8 rows of 12 chunks), the last threads copy nothing.
template <class T, int kRows, int kD, int kThreads>
struct RowCopy {
  static constexpr int kChunks = kD / 8;  // 8 x 16 bits = 16 bytes
  static constexpr int kRowStep = floor_pow2(kThreads / kChunks);
  static_assert(kRows % kRowStep == 0, "copies must divide evenly");
  static constexpr int kCopies = kRows / kRowStep;

  const char* src;  // the slice, at this thread's first row and chunk
  int stride;       // row stride of the slice, bytes (op_host.h checks it fits 31 bits)
  T* dst;           // the shared tile, at this thread's first row and chunk
  int row;          // this thread's first row within a tile

  __device__ __forceinline__ RowCopy(const T* slice, int64_t row_stride, T* tile, int tid)
      : stride(static_cast<int>(row_stride * sizeof(T))), row(tid / kChunks) {
    const int chunk = (tid % kChunks) * 8;
    src = reinterpret_cast<const char*>(slice + row * row_stride + chunk);
    dst = tile + row * (kD + 8) + chunk;
  }

  // Rows [row0, row0 + kRows) into the tile `offset` elements past the planned one (another
  // stage's buffer); rows at or past n are zero-filled and never read.
  __device__ __forceinline__ void issue(int row0, int n, int offset = 0) const {
    if (kRowStep * kChunks < kThreads && row >= kRowStep) return;
    const char* s = src + static_cast<int64_t>(row0) * stride;
    const int left = n - row0 - row;  // rows of the slice from this thread's first row on
#pragma unroll
    for (int i = 0; i < kCopies; ++i) {
      cp_async16(dst + offset + i * kRowStep * (kD + 8), s, i * kRowStep < left);
      s += kRowStep * stride;
    }
  }
};

// The two per-query statistics the dK/dV kernel reads per column of its transposed products
// (lse·log2 e and delta, kCols of each per tile), stored permuted: the columns a thread holds in
// its C fragments (8j + 2t + e) lie contiguously at t·kCols/4 + 2j + e, so it reads them with
// 16-byte loads. One 4-byte copy each, by the first 2·kCols threads (whole warps).
template <int kCols, int kThreads>
struct StatCopy {
  static_assert(2 * kCols <= kThreads && kCols % 16 == 0, "whole warps of copies");
  static constexpr int kFloats = 2 * kCols;
  const float* src;  // lse2 or delta of the slice, at this thread's column
  float* dst;        // its permuted place in the lse2 tile, or in the delta tile behind it
  int col;

  __device__ __forceinline__ StatCopy(const float* lse2, const float* delta, float* tile, int tid)
      : col(tid % kCols) {
    const int which = tid / kCols;  // 0: lse2, 1: delta (threads past 2·kCols: none)
    src = (which == 0 ? lse2 : delta) + col;
    dst = tile + which * kCols + col % 8 / 2 * (kCols / 4) + col / 8 * 2 + col % 2;
  }

  __device__ __forceinline__ void issue(int col0, int n, int tid, int offset = 0) const {
    if (2 * kCols == kThreads || tid < 2 * kCols) cp_async4(dst + offset, src + col0, col0 + col < n);
  }
};

}  // namespace kron_attn::cuda
