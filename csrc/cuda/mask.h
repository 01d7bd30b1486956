// The element mask of PARTIAL tiles (FULL tiles run none of this), in the C-fragment layout of
// mma.m16n8k16: per row block a thread holds rows g and g + 8 and columns 8j + 2t + e of the
// tile (j < kCols / 8, e < 2). The allowed columns of one of its rows are a 16-bit set, bit 2j + e;
// a row block's two rows make one 32-bit word (row g + 8 in the high half), whose bits the
// compiler turns into predicates seven at a time (R2P). Everything is set up from the walk's
// frame boundaries: no division.
//
// Masked scores become -inf: the forward's softmax and the backward's P = 2^(S·c - lse) then give
// them 0, and the self term (i == j) is never part of a mask (the kernels add it analytically).
#pragma once

#include <math.h>
#include <stdint.h>

#include "../schedule.h"
#include "device_utils.h"

namespace kron_attn::cuda {

// The thread's columns (bit 2j + e: column 8j + 2t + e) that lie below tile column z.
template <int kCols>
__device__ __forceinline__ uint32_t columns_below(int z, int t) {
  static_assert(kCols <= 64, "a row's columns must fit 16 bits");
  const int x = max(z - 2 * t, 0);
  const int count = min(2 * (x >> 3) + min(x & 7, 2), kCols / 4);
  return (1u << count) - 1u;
}

// What a PARTIAL tile's masks are made of, once per tile: the tile's first column frame, which of
// the thread's columns lie in it, which lie below N, and whether the tile reaches past its second
// frame (fewer tokens per frame than the tile has columns: the general, slower path).
template <int kCols>
struct TileColumns {
  int frame;
  uint32_t first;   // columns in `frame`; the rest of the tile is in frame + 1 (two-frame tiles)
  uint32_t inside;  // columns below N
  bool two_frames;

  __device__ __forceinline__ TileColumns(const ColumnWalk& w, int t)
      : frame(w.first_frame),
        first(columns_below<kCols>(w.tokens - w.first_offset, t)),
        inside(columns_below<kCols>(w.n - w.column0(), t)),
        two_frames(w.last_frame() <= w.first_frame + 1) {}
};

// allowed(row frame, column frame), or its transpose when the rows are keys.
template <bool kTransposed>
__device__ __forceinline__ bool pair_allowed(const FrameLayout& lay, int row_frame, int col_frame) {
  return kTransposed ? lay.allowed(col_frame, row_frame) : lay.allowed(row_frame, col_frame);
}

// The rows a thread holds (C-fragment rows g and g + 8 of each of its kR row blocks), seen by the
// masks: when the CTA's row tile spans at most two frames (the common case: more tokens per frame
// than rows per tile), which of its rows lie in the second (bit 2r + half); else the general path.
template <int kR>
struct MaskRows {
  int frame0;        // the row tile's first frame
  uint32_t second;   // rows in frame0 + 1
  bool two_frames;   // the row tile spans at most two frames
  int frame[kR][2];  // every row's frame (general path)

  __device__ __forceinline__ MaskRows(const int (&rf)[kR][2], int row0, int row1, int tokens)
      : frame0(row0 / tokens), second(0), two_frames((row1 - 1) / tokens <= row0 / tokens + 1) {
#pragma unroll
    for (int r = 0; r < kR; ++r) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        frame[r][half] = rf[r][half];
        second |= (rf[r][half] > frame0 ? 1u : 0u) << (2 * r + half);
      }
    }
  }
};

// The allowed columns of the rows of frame rf, for a tile spanning at most two frames.
template <int kCols, bool kTransposed>
__device__ __forceinline__ uint32_t row_columns(const FrameLayout& lay, const TileColumns<kCols>& tc, int rf) {
  const int second = min(tc.frame + 1, lay.frames - 1);
  const uint32_t a = pair_allowed<kTransposed>(lay, rf, tc.frame) ? tc.first : 0u;
  const uint32_t b = pair_allowed<kTransposed>(lay, rf, second) ? ~tc.first : 0u;
  return (a | b) & tc.inside;
}

// The same for a tile spanning any number of frames, frame by frame: from frame `frame`, whose
// first column is `start` columns before the tile (ColumnWalk::first_offset), through frame `last`,
// with `inside` the columns below N. Out of line: rarely run, and kept out of the PARTIAL body's
// registers (arguments by value, so nothing goes through the stack).
template <int kCols, bool kTransposed>
__device__ KA_NOINLINE uint32_t row_columns_many_frames(FrameLayout lay, int rf, int frame, int last, int start,
                                                          uint32_t inside, int t) {
  uint32_t bits = 0, below = 0;
  int end = lay.tokens - start;  // tile column where the next frame starts
  for (int u = frame; u <= last; ++u, end += lay.tokens) {
    const uint32_t upto = columns_below<kCols>(min(end, kCols), t);
    if (pair_allowed<kTransposed>(lay, rf, u)) bits |= upto & ~below;
    below = upto;
  }
  return bits & inside;
}

// The masks of a PARTIAL tile for a thread's kR row blocks: with rows and columns each within two
// frames, two row masks (one per row frame) and a select per row; otherwise row by row.
template <int kR, int kCols, bool kTransposed>
__device__ __forceinline__ void tile_mask(uint32_t (&bits)[kR], const FrameLayout& lay, const ColumnWalk& w,
                                          const MaskRows<kR>& rows, int t) {
  const TileColumns<kCols> tc(w, t);
  if (rows.two_frames && tc.two_frames) {
    const uint32_t m0 = row_columns<kCols, kTransposed>(lay, tc, rows.frame0);
    const uint32_t m1 = row_columns<kCols, kTransposed>(lay, tc, min(rows.frame0 + 1, lay.frames - 1));
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const uint32_t lo = (rows.second >> (2 * r)) & 1u ? m1 : m0;
      const uint32_t hi = (rows.second >> (2 * r + 1)) & 1u ? m1 : m0;
      bits[r] = lo | hi << 16;
    }
  } else {
    const int last = w.last_frame();
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      bits[r] = 0;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        bits[r] |= row_columns_many_frames<kCols, kTransposed>(lay, rows.frame[r][half], tc.frame, last,
                                                                w.first_offset, tc.inside, t)
                   << 16 * half;
      }
    }
  }
}

// Scores of masked elements -> -inf, visited in bit order (rows g, then g + 8) so that the
// predicates come out of each mask word seven at a time.
template <int kR, int kCols>
__device__ __forceinline__ void apply_mask(float (&s)[kR][kCols / 8][4], const uint32_t (&bits)[kR]) {
#pragma unroll
  for (int r = 0; r < kR; ++r) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
#pragma unroll
      for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int bit = 16 * half + 2 * j + e;
          float& x = s[r][j][2 * half + e];
          x = (bits[r] >> bit) & 1u ? x : -INFINITY;
        }
      }
    }
  }
}

}  // namespace kron_attn::cuda
