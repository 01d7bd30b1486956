// Block schedule of Kronecker-mask attention: which keys a query block visits.
//
// One header for every kernel (C++ CPU, CUDA, the emulated CUDA) and for the C++ unit tests;
// the Triton kernels read it through the kron_attn::block_schedule op. No torch, no STL: every
// function is usable from host and device code.
//
// Tokens are frame-major: token i belongs to frame i / L. Token i may attend to token j iff
// layout[t(i)][t(j)] or i == j, so no row is ever empty. The layout is packed as bits: row t
// holds row_words 32-bit words, bit (u % 32) of word (u / 32) is layout[t][u] (T²/8 bytes).
//
//   kmt, T = 3 (# = computed block, s = self term only)
//        k: f0  f1  f2
//   q f0 [ s   #   #  ]
//     f1 [ #   s   #  ]
//     f2 [ #   #   s  ]
//
// Two views of the same rule:
//  * frame runs: for a query frame, the maximal runs of consecutive allowed key frames. A kernel
//    whose query tiles never straddle a frame boundary (the CPU kernel) visits exactly these
//    key ranges and never masks an element;
//  * fixed tiles: a (query tile, key tile) pair of a fixed tiling is SKIP (no allowed pair),
//    FULL (every pair allowed) or PARTIAL (needs an element mask). Kernels with fixed tiles
//    (GPU) use this.
// In both, the self term of a row whose own frame pair is blocked is added analytically.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define KA_HD __host__ __device__ __forceinline__
#else
#define KA_HD inline
#endif

namespace kron_attn {

// 32-bit words per packed layout row.
KA_HD constexpr int layout_row_words(int frames) { return (frames + 31) / 32; }

// Packs a row-major T x T array of 0/1 bytes into `dst` (frames x row_words words).
KA_HD void pack_layout(const uint8_t* src, int frames, uint32_t* dst, int row_words) {
  for (int t = 0; t < frames; ++t) {
    for (int w = 0; w < row_words; ++w) dst[t * row_words + w] = 0u;
    for (int u = 0; u < frames; ++u) {
      if (src[(int64_t)t * frames + u]) dst[t * row_words + (u >> 5)] |= 1u << (u & 31);
    }
  }
}

struct FrameLayout {
  const uint32_t* words;  // packed rows (row = query frame, bit = key frame), pitch row_words
  int row_words;
  int frames;  // T
  int tokens;  // L, tokens per frame

  KA_HD bool allowed(int t, int u) const { return (words[t * row_words + (u >> 5)] >> (u & 31)) & 1u; }
  // The self term must be added separately when the frame's diagonal block is blocked.
  KA_HD bool needs_self_term(int t) const { return !allowed(t, t); }
};

// Next maximal run [*begin, *end) of allowed key frames for query frame t, searching from key
// frame `from`. Returns false when there is none.
KA_HD bool next_frame_run(const FrameLayout& lay, int t, int from, int* begin, int* end) {
  int u = from;
  while (u < lay.frames && !lay.allowed(t, u)) ++u;
  if (u >= lay.frames) return false;
  *begin = u;
  while (u < lay.frames && lay.allowed(t, u)) ++u;
  *end = u;
  return true;
}

// Query tiles that never straddle a frame: each frame is cut into `chunks_per_frame` pieces
// of nearly equal size (at most `max_rows` rows each).
struct FrameTiling {
  int tokens;            // L
  int chunks_per_frame;  // ceil(L / max_rows)

  KA_HD static FrameTiling make(int tokens, int max_rows) {
    FrameTiling tl;
    tl.tokens = tokens;
    tl.chunks_per_frame = (tokens + max_rows - 1) / max_rows;
    return tl;
  }
  KA_HD int num_tiles(int frames) const { return frames * chunks_per_frame; }
  KA_HD int frame_of(int tile) const { return tile / chunks_per_frame; }
  // Rows [*begin, *end) of tile `tile`, as token indices.
  KA_HD void rows(int tile, int* begin, int* end) const {
    const int t = tile / chunks_per_frame, c = tile % chunks_per_frame;
    const int64_t base = (int64_t)t * tokens;
    *begin = (int)(base + (int64_t)tokens * c / chunks_per_frame);
    *end = (int)(base + (int64_t)tokens * (c + 1) / chunks_per_frame);
  }
};

enum TileKind : int { TILE_SKIP = 0, TILE_FULL = 1, TILE_PARTIAL = 2 };

// Kind of the tile of query tokens [m0, m1) x key tokens [n0, n1), ignoring the self term.
KA_HD TileKind tile_kind(const FrameLayout& lay, int m0, int m1, int n0, int n1) {
  const int ta = m0 / lay.tokens, tb = (m1 - 1) / lay.tokens;
  const int ua = n0 / lay.tokens, ub = (n1 - 1) / lay.tokens;
  bool any = false, all = true;
  for (int t = ta; t <= tb; ++t) {
    for (int u = ua; u <= ub; ++u) {
      const bool a = lay.allowed(t, u);
      any = any || a;
      all = all && a;
    }
  }
  return all ? TILE_FULL : (any ? TILE_PARTIAL : TILE_SKIP);
}

// Whether the tile [m0, m1) x [n0, n1) holds a diagonal element (i == j) whose frame pair is
// blocked, i.e. a self term the kernel must add itself.
KA_HD bool tile_has_self_term(const FrameLayout& lay, int m0, int m1, int n0, int n1) {
  const int lo = m0 > n0 ? m0 : n0, hi = m1 < n1 ? m1 : n1;
  for (int t = lo / lay.tokens; lo < hi && t <= (hi - 1) / lay.tokens; ++t) {
    if (lay.needs_self_term(t)) return true;
  }
  return false;
}

// The fixed tiling's walk: the first column tile >= `from` (of `count`, `block` tokens each, N =
// n tokens) that is not SKIP against the row tile [r0, r1), or `count` when none is left. Rows
// are queries and columns keys, or the transpose when `by_key` (a backward over key tiles).
KA_HD int next_tile(const FrameLayout& lay, int from, int count, int block, int n, int r0, int r1, bool by_key) {
  for (int j = from; j < count; ++j) {
    const int c0 = j * block, c1 = c0 + block < n ? c0 + block : n;
    const TileKind kind = by_key ? tile_kind(lay, c0, c1, r0, r1) : tile_kind(lay, r0, r1, c0, c1);
    if (kind != TILE_SKIP) return j;
  }
  return count;
}

// Number of (query, key) pairs that attend, self terms included: the useful work.
KA_HD int64_t allowed_pairs(const FrameLayout& lay) {
  int64_t blocks = 0, self = 0;
  for (int t = 0; t < lay.frames; ++t) {
    for (int u = 0; u < lay.frames; ++u) blocks += lay.allowed(t, u) ? 1 : 0;
    self += lay.needs_self_term(t) ? 1 : 0;
  }
  const int64_t L = lay.tokens;
  return blocks * L * L + self * L;
}

}  // namespace kron_attn
