// Forward kernel: FlashAttention-2's online softmax over the key tiles the block schedule keeps,
// with the self term seeding the softmax.
//
// One CTA = one (b, h) and kBlockM queries; warp w owns queries [16·kR·w, 16·kR·(w + 1)) of the tile.
//   prologue   Q tile -> smem (cp.async); the schedule (layout bits, walk table) -> smem; rows
//              whose own frame pair is blocked start their softmax from the self term q_i·k_i,
//              v_i (read from global memory); the first scheduled K tile -> smem.
//   main loop  for each key tile j the walk keeps, K_j in smem on entry:
//                V_j -> smem (lands while S is computed)
//                S = Q K_jᵀ (mma, fp32, raw scores)
//                PARTIAL tiles only: scores outside the layout or past N -> -inf (mask.h)
//                wait for V_j, barrier; the next K -> smem (lands while P V is computed)
//                online softmax (softmax.h): m' = max(m, rowmax S), P = 2^(S·c - m'·c),
//                l = l·2^((m - m')·c) + ΣP, acc = acc·2^((m - m')·c) + P V_j (P packed from S's
//                registers); wait for the next K, barrier
//   epilogue   out = acc / l, lse = (m·c + log2 l)·ln 2 (c = scale·log2 e).
// FULL and PARTIAL tiles run separate copies of the loop body (a compile-time flag): the FULL
// body holds no mask code. The walk carries the next tile and its kind from step to step.
#pragma once

#include <math.h>

#include <type_traits>

#include "copy.h"
#include "device_utils.h"
#include "kernel_traits.h"
#include "launch.h"
#include "launch_kernel.h"
#include "mask.h"
#include "softmax.h"

namespace kron_attn::cuda {

template <class Traits, class T>
__global__ void __launch_bounds__(Traits::kThreads) fwd_kernel(const __grid_constant__ FwdParams p) {
  constexpr int D = Traits::kHeadDim, BM = Traits::kBlockM, BN = Traits::kBlockN, R = Traits::kRowBlocks;
  constexpr int P = Traits::kPitch, NT = Traits::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  T *sQ = reinterpret_cast<T*>(smem), *sK = sQ + BM * P, *sV = sK + BN * P;
  uint32_t* sSchedule = reinterpret_cast<uint32_t*>(sV + BN * P);

  const int n = p.tokens_total, L = p.tokens;
  const RowTile<BM> cta(n);
  const int bh = cta.bh, b = bh / p.heads, h = bh % p.heads, m0 = cta.row0, m1 = cta.row1;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, t = lane % 4;

  const T* q = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
  const T* k = static_cast<const T*>(p.k) + b * p.k_stride.batch + h * p.k_stride.head;
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride.batch + h * p.v_stride.head;
  const RowCopy<T, BN, D, NT> k_copy(k, p.k_stride.row, sK, tid);
  const RowCopy<T, BN, D, NT> v_copy(v, p.v_stride.row, sV, tid);
  RowCopy<T, BM, D, NT>(q, p.q_stride.row, sQ, tid).issue(m0, n);
  cp_async_commit();
  const FrameLayout lay = load_schedule(sSchedule, p.layout, p.frames, L, m0, m1, /*by_key=*/false, tid, NT);
  ColumnWalk walk = column_walk(sSchedule, lay, BN);
  if (!walk.done()) k_copy.issue(walk.column0(), n);
  cp_async_commit();

  const FragmentRows<R> rows(m0, warp, lane, L, p.frames);
  const MaskRows<R> mask_rows(rows.frame, m0, m1, L);
  OnlineSoftmax<R> softmax;
  float acc[R][D / 8][4];
  clear<R, D>(acc);
  if (tile_has_self_term(lay, m0, m1, m0, m1)) {
    rows.for_self_terms(lay, n, [&](int r, int half, int i, bool applies) {
      const float s = quad_dot<T, D>(q + i * p.q_stride.row, k + i * p.k_stride.row, t);
      if (applies) {
        softmax.row_max[r][half] = s;
        softmax.row_sum[r][half] = t == 0 ? 1.f : 0.f;  // the row sum is split over the quad: count it once
        seed_fragment_row<T, D>(acc[r], half, v + i * p.v_stride.row, 1.f, t);
      }
    });
  }
  cp_async_wait<0>();
  __syncthreads();

  const SharedA<T, R, D> q_frags(sQ + 16 * R * warp * P, P, lane);
  // One key tile; the walk moves on to the next.
  auto step = [&](auto masked) {
    constexpr bool kMasked = decltype(masked)::value;
    v_copy.issue(walk.column0(), n);
    cp_async_commit();
    float s[R][BN / 8][4];
    warp_gemm_abt<T, R, BN, D>(s, q_frags, sK, P, lane);
    if constexpr (kMasked) {
      uint32_t bits[R];
      tile_mask<R, BN, /*kTransposed=*/false>(bits, lay, walk, mask_rows, t);
      apply_mask<R, BN>(s, bits);
    }
    cp_async_wait<0>();
    __syncthreads();  // V_j has landed; every warp is done with K_j
    walk.next();
    if (!walk.done()) k_copy.issue(walk.column0(), n);
    cp_async_commit();
    softmax.template update<kMasked, BN, D>(s, acc, p.scale_log2);
    warp_gemm_rega_b<T, R, D, BN>(acc, s, sV, P, lane);
    cp_async_wait<0>();
    __syncthreads();  // the next K has landed; every warp is done with V_j
  };
  walk_tiles(walk, step);  // steady-state loop

  float mul[R][2];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float l = quad_sum(softmax.row_sum[r][half]);
      mul[r][half] = l > 0.f ? 1.f / l : 0.f;
      if (t == 0 && rows.row[r][half] < n) {
        p.lse[(int64_t)bh * n + rows.row[r][half]] =
            (softmax.row_max[r][half] * p.scale_log2 + log2f(l)) * static_cast<float>(kLn2);
      }
    }
  }
  // The warp's rows of sQ are read by this warp only, and it is done with them.
  T* out = static_cast<T*>(p.out) + (int64_t)bh * n * D;
  store_warp_rows<T, R, D>(out, sQ + 16 * R * warp * P, acc, mul, m0 + 16 * R * warp, n, lane);
}

// Grid: one CTA per (query tile, b, h), the query tiles of one (b, h) adjacent so that CTAs
// running together share K and V in L2. Dynamic shared memory: the tiles plus the schedule.
template <int D, class T>
void run_fwd(const FwdParams& p, int64_t batch_heads, cudaStream_t stream) {
  using Traits = FwdTraits<D>;
  launch_kernel(fwd_kernel<Traits, T>, "fwd_kernel", RowTile<Traits::kBlockM>::grid_size(p.tokens_total, batch_heads),
                Traits::kThreads, Traits::smem_bytes(p.frames), stream, p);
}

}  // namespace kron_attn::cuda
