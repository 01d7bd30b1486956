// Unit tests of the block schedule (csrc/schedule.h) against brute force over tokens.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "expect.h"
#include "schedule.h"

using kron_attn::FrameLayout;
using kron_attn::FrameTiling;

static bool attends(const FrameLayout& lay, int i, int j) {
  return lay.allowed(i / lay.tokens, j / lay.tokens) || i == j;
}

static void check_layout(const std::vector<uint8_t>& bytes, int T, int L) {
  const int row_words = kron_attn::layout_row_words(T);
  std::vector<uint32_t> words(T * row_words);
  kron_attn::pack_layout(bytes.data(), T, words.data(), row_words);
  const FrameLayout lay{words.data(), row_words, T, L};
  const int N = T * L;
  for (int t = 0; t < T; ++t)
    for (int u = 0; u < T; ++u) EXPECT(lay.allowed(t, u) == (bytes[t * T + u] != 0), "packed bit (%d,%d)", t, u);

  // Frame runs cover exactly the allowed key frames, in order, without overlap.
  for (int t = 0; t < T; ++t) {
    std::vector<int> seen(T, 0);
    int b, e, last_end = -1;
    for (int from = 0; kron_attn::next_frame_run(lay, t, from, &b, &e); from = e) {
      EXPECT(b > last_end, "runs out of order or adjacent (t=%d)", t);
      EXPECT(b < e, "empty run (t=%d)", t);
      for (int u = b; u < e; ++u) seen[u] = 1;
      last_end = e;
    }
    for (int u = 0; u < T; ++u) EXPECT(seen[u] == (int)lay.allowed(t, u), "run coverage t=%d u=%d", t, u);
  }

  // Frame tiling: every token in exactly one tile, tiles inside one frame, at most max_rows rows.
  for (int max_rows : {1, 3, 64}) {
    const FrameTiling tl = FrameTiling::make(L, max_rows);
    std::vector<int> count(N, 0);
    for (int tile = 0; tile < tl.num_tiles(T); ++tile) {
      int r0, r1;
      tl.rows(tile, &r0, &r1);
      EXPECT(r1 > r0 && r1 - r0 <= max_rows, "tile size %d", r1 - r0);
      EXPECT(r0 / L == tl.frame_of(tile) && (r1 - 1) / L == tl.frame_of(tile), "tile straddles a frame");
      for (int i = r0; i < r1; ++i) ++count[i];
    }
    for (int i = 0; i < N; ++i) EXPECT(count[i] == 1, "token %d covered %d times", i, count[i]);
  }

  // Fixed tiles: kind and self term agree with brute force.
  for (int bm : {1, 4, 16}) {
    for (int bn : {1, 8, 32}) {
      for (int m0 = 0; m0 < N; m0 += bm) {
        for (int n0 = 0; n0 < N; n0 += bn) {
          const int m1 = m0 + bm < N ? m0 + bm : N, n1 = n0 + bn < N ? n0 + bn : N;
          bool any = false, all = true, self = false;
          for (int i = m0; i < m1; ++i) {
            for (int j = n0; j < n1; ++j) {
              const bool a = lay.allowed(i / L, j / L);
              any |= a;
              all &= a;
              self |= (i == j && !a);
            }
          }
          const int want = all ? kron_attn::TILE_FULL : (any ? kron_attn::TILE_PARTIAL : kron_attn::TILE_SKIP);
          EXPECT(kron_attn::tile_kind(lay, m0, m1, n0, n1) == want, "tile kind at (%d,%d) bm=%d bn=%d", m0, n0, bm, bn);
          EXPECT(kron_attn::tile_has_self_term(lay, m0, m1, n0, n1) == self, "self term at (%d,%d)", m0, n0);
        }
      }
    }
  }

  // The walk visits exactly the non-SKIP tiles, in order, with their kinds (a tile reaching past N
  // is PARTIAL: it needs the column bound), both ways round.
  std::vector<uint32_t> prefix(T + 1);
  for (int br : {1, 5, 16, 64}) {
    for (int bc : {1, 8, 32, 64}) {
      const int rows = (N + br - 1) / br, cols = (N + bc - 1) / bc;
      for (int by_key = 0; by_key < 2; ++by_key) {
        for (int r = 0; r < rows; ++r) {
          const int r0 = r * br, r1 = r0 + br < N ? r0 + br : N;
          std::vector<int> want, got;
          for (int c = 0; c < cols; ++c) {
            const int c0 = c * bc, c1 = c0 + bc < N ? c0 + bc : N;
            int kind = by_key ? kron_attn::tile_kind(lay, c0, c1, r0, r1) : kron_attn::tile_kind(lay, r0, r1, c0, c1);
            if (kind == kron_attn::TILE_FULL && c0 + bc > N) kind = kron_attn::TILE_PARTIAL;
            if (kind != kron_attn::TILE_SKIP) want.insert(want.end(), {c, kind});
          }
          kron_attn::walk_prefix(lay, r0, r1, by_key, prefix.data());
          for (auto w = kron_attn::ColumnWalk::start(prefix.data(), T, L, bc); !w.done(); w.next())
            got.insert(got.end(), {w.tile, w.kind});
          EXPECT(got == want, "walk of row tile %d (br=%d bc=%d by_key=%d)", r, br, bc, by_key);
        }
      }
    }
  }

  // Useful work.
  int64_t pairs = 0;
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) pairs += attends(lay, i, j);
  EXPECT(kron_attn::allowed_pairs(lay) == pairs, "allowed_pairs %lld != %lld", (long long)kron_attn::allowed_pairs(lay),
         (long long)pairs);
}

int main() {
  std::mt19937 rng(0);
  int cases = 0;
  for (int T : {1, 2, 3, 5, 8, 33, 70}) {
    for (int L : {1, 2, 7, 13}) {
      std::vector<uint8_t> kmt(T * T), kmct(T * T), rnd(T * T);
      for (int t = 0; t < T; ++t) {
        for (int u = 0; u < T; ++u) {
          kmt[t * T + u] = t != u;
          kmct[t * T + u] = u < t;
          rnd[t * T + u] = rng() & 1;
        }
      }
      check_layout(kmt, T, L);
      check_layout(kmct, T, L);
      check_layout(rnd, T, L);
      cases += 3;
    }
  }
  std::printf("%d layouts checked, %d failures\n", cases, failures);
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
