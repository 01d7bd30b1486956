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
//    (GPU) walk them with ColumnWalk; tile_kind is the definition the walk is tested against.
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

// The fixed tiling's walk over the column tiles of one row tile: the kernels' schedule. It steps
// one column tile at a time carrying the frame and offset of the tile's first and last column, so
// a step divides nothing; a tile's kind then comes from two reads of a per-row-tile table
// (walk_prefix). Rows are queries and columns keys, or the transpose when `by_key` (a backward
// over key tiles).
//
// walk_prefix entry u (0 <= u <= T): over column frames [0, u), how many are allowed for some row
// frame of the row tile (low 16 bits) and how many are blocked for some row frame (high 16 bits).
// A column tile over frames [a, b] is then SKIP when the first count does not grow from a to b + 1,
// FULL (if it lies below N) when the second does not.
KA_HD uint32_t walk_frame_flags(const FrameLayout& lay, int row_frame0, int row_frame1, int u, bool by_key) {
  bool any = false, all = true;
  for (int r = row_frame0; r <= row_frame1; ++r) {
    const bool a = by_key ? lay.allowed(u, r) : lay.allowed(r, u);
    any = any || a;
    all = all && a;
  }
  return (any ? 1u : 0u) | (all ? 0u : 1u << 16);
}

// The table for rows [r0, r1), into prefix[0 .. T]; what a kernel computes in parallel (flags) and
// then scans.
KA_HD void walk_prefix(const FrameLayout& lay, int r0, int r1, bool by_key, uint32_t* prefix) {
  const int f0 = r0 / lay.tokens, f1 = (r1 - 1) / lay.tokens;
  prefix[0] = 0;
  for (int u = 0; u < lay.frames; ++u) prefix[u + 1] = prefix[u] + walk_frame_flags(lay, f0, f1, u, by_key);
}

struct ColumnWalk {
  const uint32_t* prefix;  // walk_prefix of the row tile
  int frames, tokens, n, block, count;  // T, L, N, columns per tile, column tiles
  int whole;                           // column tiles that end at or before N
  int step_frames, step_offset;        // block = step_frames * L + step_offset
  int span_frames, span_offset;        // block - 1 = span_frames * L + L - 1 - span_offset
  int tile;                            // the current column tile (count: done)
  int first_frame, first_offset;       // frame and offset within it of the tile's first column
  TileKind kind;                       // of the current tile (FULL or PARTIAL unless done)

  // The walk at the first column tile that is not SKIP.
  KA_HD static ColumnWalk start(const uint32_t* prefix, int frames, int tokens, int block) {
    ColumnWalk w;
    w.prefix = prefix;
    w.frames = frames;
    w.tokens = tokens;
    w.n = frames * tokens;
    w.block = block;
    w.count = (w.n + block - 1) / block;
    w.whole = w.n / block;
    w.step_frames = block / tokens;
    w.step_offset = block % tokens;
    w.span_frames = (block - 1) / tokens;
    w.span_offset = tokens - 1 - (block - 1) % tokens;
    w.tile = 0;
    w.first_frame = w.first_offset = 0;
    w.kind = w.done() ? TILE_SKIP : w.classify();
    if (w.kind == TILE_SKIP) w.next();
    return w;
  }

  KA_HD bool done() const { return tile >= count; }
  KA_HD int column0() const { return tile * block; }
  // The frame of the tile's last column (within the clip): its first column's frame, plus the
  // frames its width spans, plus one when the offset carries into the next frame.
  KA_HD int last_frame() const {
    const int last = first_frame + span_frames + (first_offset > span_offset ? 1 : 0);
    return last < frames - 1 ? last : frames - 1;
  }

  // Kind of the current tile (not done); a tile reaching past N is never FULL, so FULL tiles need
  // neither the element mask nor the column bound.
  KA_HD TileKind classify() const {
    const uint32_t c = prefix[last_frame() + 1] - prefix[first_frame];
    if ((c & 0xffffu) == 0) return TILE_SKIP;
    return c < (1u << 16) && tile < whole ? TILE_FULL : TILE_PARTIAL;
  }

  KA_HD void step() {
    ++tile;
    first_offset += step_offset;
    first_frame += step_frames;
    const bool wrap = first_offset >= tokens;
    first_offset -= wrap ? tokens : 0;
    first_frame += wrap ? 1 : 0;
  }

  // Moves to the next column tile that is not SKIP (done() when there is none).
  KA_HD void next() {
    do {
      step();
      kind = done() ? TILE_SKIP : classify();
    } while (kind == TILE_SKIP && !done());
  }
};

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
