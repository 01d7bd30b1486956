// Forward kernel: FlashAttention-2 style online softmax over the key tiles the block schedule
// keeps, with the self term seeding the softmax.
//
// One CTA = one (b, h) and kBlockM queries; warp w owns queries [16w, 16w + 16) of the tile.
//   prologue   Q tile -> smem; layout bits -> smem; if a row's own frame pair is blocked,
//              K, V rows of the query positions -> smem and the self score q_i·k_i, v_i seed
//              that row's (max, sum, acc): every row starts non-empty.
//   main loop  for each key tile j that tile_kind() does not SKIP (cp.async, kStages buffers):
//                S = Q Kⱼᵀ (mma, fp32) in base-2 units; on PARTIAL tiles (and the tile past N)
//                elements are masked by layout[i / L][j / L] (and j < N);
//                online softmax: m' = max(m, rowmax S), P = 2^(S - m'), l = l 2^(m - m') + ΣP,
//                acc = acc 2^(m - m') + P Vⱼ (P packed from the S registers).
//   epilogue   out = acc / l, lse = (m + log2 l) ln 2.
#pragma once

#include <math.h>

#include "device_utils.h"
#include "kernel_traits.h"
#include "launch.h"
#include "launch_kernel.h"

namespace kron_attn::cuda {

// Min blocks 1: left to its own occupancy heuristic ptxas capped the forward at 128 (D <= 64)
// or 168 (D >= 96) registers and spilled; with the cap lifted it needs 152 / 196 and spills
// nothing (8 warps per SM, the occupancy FlashAttention-2 runs at).
template <class Traits, class T>
__global__ void __launch_bounds__(Traits::kThreads, 1) fwd_kernel(const __grid_constant__ FwdParams p) {
  constexpr int D = Traits::kHeadDim, BM = Traits::kBlockM, BN = Traits::kBlockN, S = Traits::kStages;
  constexpr int P = Traits::kPitch, NT = Traits::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);
  T* sK = sQ + BM * P;
  T* sV = sK + S * BN * P;
  uint32_t* sLay = reinterpret_cast<uint32_t*>(sV + S * BN * P);

  const int n = p.tokens_total, L = p.tokens;
  const int m_tiles = (n + BM - 1) / BM, k_tiles = (n + BN - 1) / BN;
  const int m_tile = blockIdx.x % m_tiles, bh = blockIdx.x / m_tiles;
  const int b = bh / p.heads, h = bh % p.heads;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int m0 = m_tile * BM, m1 = min(m0 + BM, n);

  const T* q = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
  const T* k = static_cast<const T*>(p.k) + b * p.k_stride.batch + h * p.k_stride.head;
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride.batch + h * p.v_stride.head;

  load_rows_async<T, BM, D, NT>(sQ, q, p.q_stride.row, m0, n, tid);
  cp_async_commit();
  const FrameLayout lay = load_layout(sLay, p.layout, p.frames, L, tid, NT);
  __syncthreads();

  // This thread's two rows (C-fragment rows g and g + 8 of its warp) and their frames; rows
  // past N get frame T - 1 so that layout lookups stay in bounds (their results are dropped).
  const T* sQw = sQ + warp * 16 * P;
  int row[2], qf[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    row[half] = m0 + warp * 16 + g + 8 * half;
    qf[half] = min(row[half] / L, p.frames - 1);
  }
  float m_i[2] = {-INFINITY, -INFINITY};  // running max, base-2 units
  float l_i[2] = {0.f, 0.f};              // running sum, this lane's columns only
  float acc[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;

  if (tile_has_self_term(lay, m0, m1, m0, m1)) {
    load_rows_async<T, BM, D, NT>(sK, k, p.k_stride.row, m0, n, tid);
    load_rows_async<T, BM, D, NT>(sV, v, p.v_stride.row, m0, n, tid);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = warp * 16 + g + 8 * half;
      const float s = quad_dot<T, D>(sQ + r * P, sK + r * P, t) * p.scale_log2;
      if (row[half] < n && lay.needs_self_term(qf[half])) {
        m_i[half] = s;
        l_i[half] = t == 0 ? 1.f : 0.f;  // the row sum is split over the quad: count it once
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          acc[j][2 * half] = Elem<T>::to_float(sV[r * P + 8 * j + 2 * t]);
          acc[j][2 * half + 1] = Elem<T>::to_float(sV[r * P + 8 * j + 2 * t + 1]);
        }
      }
    }
    __syncthreads();  // the pipeline below overwrites sK, sV
  }

  auto pipe = tile_pipeline<S>(lay, k_tiles, BN, n, m0, m1, /*by_key=*/false, [&](int tile, int slot) {
    load_rows_async<T, BN, D, NT>(sK + slot * BN * P, k, p.k_stride.row, tile * BN, n, tid);
    load_rows_async<T, BN, D, NT>(sV + slot * BN * P, v, p.v_stride.row, tile * BN, n, tid);
  });
  int stage = 0;
  for (int kt = pipe.start(); kt < k_tiles; kt = pipe.next(kt + 1)) {
    pipe.refill(stage);      // into the slot the previous step computed on (released by its barrier)
    cp_async_wait<S - 1>();  // this step's tile (and the Q tile) have landed
    __syncthreads();

    const T* sKs = sK + stage * BN * P;
    const T* sVs = sV + stage * BN * P;
    float sc[BN / 8][4];
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;
    warp_gemm_abt<T, BN, D>(sc, sQw, P, sKs, P, lane);

    const int n0 = kt * BN, n1 = min(n0 + BN, n);
    bool ok[BN / 8][4];
    mask_fragment<BN>(ok, lay, tile_kind(lay, m0, m1, n0, n1) == TILE_PARTIAL, qf, n0, n, t, /*transposed=*/false);
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
#pragma unroll
      for (int c = 0; c < 4; ++c) sc[j][c] = ok[j][c] ? sc[j][c] * p.scale_log2 : -INFINITY;
    }

#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = m_i[half];
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) mx = fmaxf(mx, fmaxf(sc[j][2 * half], sc[j][2 * half + 1]));
      mx = quad_max(mx);
      // A row with nothing so far (max still -inf) must not make -inf - -inf = NaN.
      const float base = mx == -INFINITY ? 0.f : mx;
      const float alpha = exp2f(m_i[half] - base);
      m_i[half] = mx;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        sc[j][2 * half] = exp2f(sc[j][2 * half] - base);
        sc[j][2 * half + 1] = exp2f(sc[j][2 * half + 1] - base);
        sum += sc[j][2 * half] + sc[j][2 * half + 1];
      }
      l_i[half] = l_i[half] * alpha + sum;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        acc[j][2 * half] *= alpha;
        acc[j][2 * half + 1] *= alpha;
      }
    }
    warp_gemm_rega_b<T, D, BN>(acc, sc, sVs, P, lane);

    __syncthreads();  // every warp is done with this stage before it is refilled
    stage = (stage + 1) % S;
  }
  cp_async_wait<0>();  // nothing may still be landing in shared memory when the CTA exits

  float inv[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float l = quad_sum(l_i[half]);
    inv[half] = l > 0.f ? 1.f / l : 0.f;
    if (t == 0 && row[half] < n) {
      p.lse[(int64_t)bh * n + row[half]] = (m_i[half] + log2f(l)) * kLn2;
    }
  }
  // The warp's rows of sQ are read by this warp only, and it is done with them.
  T* out = static_cast<T*>(p.out) + (int64_t)bh * n * D;
  store_warp_rows<T, D>(out, sQ + warp * 16 * P, acc, inv, m0 + warp * 16, n, lane);
}

// Grid: one CTA per (query tile, b, h), the query tiles of one (b, h) adjacent so that CTAs
// running together share K and V in L2. Dynamic shared memory: the tiles plus the layout bits.
template <int D, class T>
void run_fwd(const FwdParams& p, int64_t batch_heads, cudaStream_t stream) {
  using Traits = FwdTraits<D>;
  const int64_t tiles = (p.tokens_total + Traits::kBlockM - 1) / Traits::kBlockM;
  launch_kernel(fwd_kernel<Traits, T>, "fwd_kernel", tiles * batch_heads, Traits::kThreads,
                Traits::kSmemElems * sizeof(T) + layout_smem_bytes(p.frames), stream, p);
}

}  // namespace kron_attn::cuda
