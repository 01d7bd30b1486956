// The forward's online softmax over the rows a thread holds in C fragments (rows g and g + 8 of
// each of its kR row blocks), on raw scores: the scale (times log2 e) enters the one FFMA before
// each exp2, p = 2^(s·c - m·c), so a score costs a max, an FFMA, an exp2 and an add.
#pragma once

#include <math.h>

#include "device_utils.h"

namespace kron_attn::cuda {

template <int kR>
struct OnlineSoftmax {
  float row_max[kR][2];  // running max of raw scores (-inf: nothing yet)
  float row_sum[kR][2];  // running sum of 2^(s·c - max·c) over this lane's columns (the quad sums at the end)

  __device__ __forceinline__ OnlineSoftmax() {
#pragma unroll
    for (int r = 0; r < kR; ++r) row_max[r][0] = row_max[r][1] = -INFINITY, row_sum[r][0] = row_sum[r][1] = 0.f;
  }

  // One tile of scores s -> probabilities (in place), acc rescaled to the new max. kMasked: the tile
  // may hold -inf scores, and a row may have nothing yet (its max still -inf after the tile): its
  // exponents then use 0 as their base, so no -inf - (-inf) arises. On FULL tiles every score is
  // finite and the test is left out.
  template <bool kMasked, int kCols, int kD>
  __device__ __forceinline__ void update(float (&s)[kR][kCols / 8][4], float (&acc)[kR][kD / 8][4], float scale_log2) {
#pragma unroll
    for (int r = 0; r < kR; ++r) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float mx = row_max[r][half];
#pragma unroll
        for (int j = 0; j < kCols / 8; ++j) mx = fmaxf(mx, fmaxf(s[r][j][2 * half], s[r][j][2 * half + 1]));
        mx = quad_max(mx);
        const float base = kMasked && mx == -INFINITY ? 0.f : mx * scale_log2;
        const float alpha = exp2f(fmaf(row_max[r][half], scale_log2, -base));
        row_max[r][half] = mx;
        float rowsum = 0.f;
#pragma unroll
        for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float p = exp2f(fmaf(s[r][j][2 * half + e], scale_log2, -base));
            s[r][j][2 * half + e] = p;
            rowsum += p;
          }
        }
        row_sum[r][half] = fmaf(row_sum[r][half], alpha, rowsum);
#pragma unroll
        for (int j = 0; j < kD / 8; ++j) {
          acc[r][j][2 * half] *= alpha;
          acc[r][j][2 * half + 1] *= alpha;
        }
      }
    }
  }
};

}  // namespace kron_attn::cuda
