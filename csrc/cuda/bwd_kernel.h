// Backward kernels (FlashAttention-2 structure, deterministic: no atomics, every output element
// is written by exactly one thread of one CTA). c = scale·log2 e, lse2 = lse·log2 e:
//   delta_kernel   Δ_i = Σ_d dO_id O_id - dlse_i, lse2_i                 (float32; dlse: the
//                  gradient of lse where lse is used, 0 otherwise: dS = P (dP - Δ_i) takes both)
//   bwd_kv_kernel  one CTA per key tile: over the query tiles the transposed schedule keeps,
//                  Sᵀ = K Qᵀ, Pᵀ = 2^(Sᵀ·c - lse2), dPᵀ = V dOᵀ, dSᵀ = Pᵀ (dPᵀ - Δ),
//                  dV += Pᵀ dO, dK += dSᵀ Q;   dK *= scale
//   bwd_q_kernel   one CTA per query tile: over its key tiles, S, P, dP, dS as above,
//                  dQ += dS K;   dQ *= scale
// Working transposed in bwd_kv_kernel (each warp owns 16 keys, the rows of Sᵀ) keeps Pᵀ and dSᵀ
// in the accumulator registers that feed the next products as A operands: nothing goes through
// shared memory but the inputs. dQ is recomputed in its own kernel rather than accumulated with
// atomics across key tiles: two extra products per tile pair buy a bit-for-bit reproducible
// gradient.
// The self term (i == j in a blocked frame pair) seeds the accumulators: P_ii from the saved lse,
// dS_ii = P_ii (dO_i·v_i - Δ_i), dV_i = P_ii dO_i, dK_i = dS_ii q_i, dQ_i = dS_ii k_i.
// dK/dV streams its query tiles through one buffer per input (dO copied during the previous
// tile's dK product, Q during dPᵀ), dQ its key tiles through two; FULL and PARTIAL tiles run
// separate copies of the loop body, as in the forward.
#pragma once

#include <math.h>

#include <type_traits>

#include "copy.h"
#include "device_utils.h"
#include "kernel_traits.h"
#include "launch.h"
#include "launch_kernel.h"
#include "mask.h"

namespace kron_attn::cuda {

template <class T>
__global__ void delta_kernel(const T* __restrict__ dout, Strides ds, const T* __restrict__ out,
                             const float* __restrict__ lse, const float* __restrict__ dlse, float* __restrict__ delta,
                             float* __restrict__ lse2, int heads, int n, int d, int64_t rows) {
  // One warp per row; out, lse and delta are contiguous, dout only has a contiguous last dimension.
  const int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= rows) return;
  const int lane = threadIdx.x % 32;
  const int64_t bh = r / n, i = r % n;
  const T* a = dout + (bh / heads) * ds.batch + (bh % heads) * ds.head + i * ds.row;
  const T* o = out + r * d;
  float s = 0.f;
  for (int c = lane; c < d; c += 32) s += Elem<T>::to_float(a[c]) * Elem<T>::to_float(o[c]);
#pragma unroll
  for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0) {
    delta[r] = dlse != nullptr ? s - dlse[r] : s;
    lse2[r] = lse[r] * static_cast<float>(kLog2e);
  }
}

// Slices of one (b, h) of the backward's tensors; statistics contiguous over (B, H, N).
template <class T>
struct BwdSlice {
  const T *q, *k, *v, *dout;
  const float *lse2, *delta;

  __device__ __forceinline__ BwdSlice(const BwdParams& p, int bh) {
    const int b = bh / p.heads, h = bh % p.heads;
    q = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
    k = static_cast<const T*>(p.k) + b * p.k_stride.batch + h * p.k_stride.head;
    v = static_cast<const T*>(p.v) + b * p.v_stride.batch + h * p.v_stride.head;
    dout = static_cast<const T*>(p.dout) + b * p.do_stride.batch + h * p.do_stride.head;
    lse2 = p.lse2 + (int64_t)bh * p.tokens_total;
    delta = p.delta + (int64_t)bh * p.tokens_total;
  }

  // The self term of token i: dS_ii (and P_ii, returned through p_ii); every lane of the quad
  // takes part.
  template <int kD>
  __device__ __forceinline__ float self_grad(const BwdParams& p, int i, int t, float* p_ii) const {
    const float qk = quad_dot<T, kD>(q + i * p.q_stride.row, k + i * p.k_stride.row, t);
    const float dov = quad_dot<T, kD>(dout + i * p.do_stride.row, v + i * p.v_stride.row, t);
    *p_ii = exp2f(fmaf(qk, p.scale_log2, -lse2[i]));
    return *p_ii * (dov - delta[i]);
  }
};

template <class Traits, class T>
__global__ void __launch_bounds__(Traits::kThreads) bwd_kv_kernel(const __grid_constant__ BwdParams p) {
  constexpr int D = Traits::kHeadDim, BM = Traits::kBlockM, BN = Traits::kBlockN, R = Traits::kRowBlocks;
  constexpr int P = Traits::kPitch, NT = Traits::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  T *sK = reinterpret_cast<T*>(smem), *sV = sK + BN * P, *sQ = sV + BN * P, *sdO = sQ + BM * P;
  float* sStat = reinterpret_cast<float*>(sdO + BM * P);  // lse2, delta (StatCopy)
  uint32_t* sSchedule = reinterpret_cast<uint32_t*>(sStat + Traits::kSmemFloats);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, t = lane % 4;
  const int n = p.tokens_total;
  const RowTile<BN> cta(n);
  const int bh = cta.bh, n0 = cta.row0, n1 = cta.row1;
  const BwdSlice<T> x(p, bh);

  RowCopy<T, BN, D, NT>(x.k, p.k_stride.row, sK, tid).issue(n0, n);
  RowCopy<T, BN, D, NT>(x.v, p.v_stride.row, sV, tid).issue(n0, n);
  cp_async_commit();
  const StatCopy<BM, NT> stat_copy(x.lse2, x.delta, sStat, tid);
  static_assert(StatCopy<BM, NT>::kFloats == Traits::kSmemFloats, "the statistics' size");
  const RowCopy<T, BM, D, NT> q_copy(x.q, p.q_stride.row, sQ, tid);
  const RowCopy<T, BM, D, NT> do_copy(x.dout, p.do_stride.row, sdO, tid);
  const FrameLayout lay = load_schedule(sSchedule, p.layout, p.frames, p.tokens, n0, n1, /*by_key=*/true, tid, NT);
  ColumnWalk walk = column_walk(sSchedule, lay, BM);
  // Two copy groups per query tile: dO with the statistics, then Q.
  auto load_do = [&] {
    if (!walk.done()) {
      do_copy.issue(walk.column0(), n);
      stat_copy.issue(walk.column0(), n, tid);
    }
    cp_async_commit();
  };
  auto load_q = [&] {
    if (!walk.done()) q_copy.issue(walk.column0(), n);
    cp_async_commit();
  };
  load_do();
  load_q();

  const FragmentRows<R> keys(n0, warp, lane, p.tokens, p.frames);
  const MaskRows<R> mask_rows(keys.frame, n0, n1, p.tokens);
  float dk[R][D / 8][4], dv[R][D / 8][4];
  clear<R, D>(dk);
  clear<R, D>(dv);
  if (tile_has_self_term(lay, n0, n1, n0, n1)) {
    keys.for_self_terms(lay, n, [&](int r, int half, int j, bool applies) {
      float pj;
      const float dsj = x.template self_grad<D>(p, j, t, &pj);
      if (applies) {
        seed_fragment_row<T, D>(dv[r], half, x.dout + j * p.do_stride.row, pj, t);
        seed_fragment_row<T, D>(dk[r], half, x.q + j * p.q_stride.row, dsj, t);
      }
    });
  }

  const SharedA<T, R, D> k_frags(sK + 16 * R * warp * P, P, lane), v_frags(sV + 16 * R * warp * P, P, lane);
  // One query tile. Its dO and statistics are copied while the previous tile's dK product runs, its
  // Q while dPᵀ is computed: one buffer each, as in the forward.
  auto step = [&](auto masked) {
    constexpr bool kMasked = decltype(masked)::value;
    uint32_t bits[R];
    if constexpr (kMasked) tile_mask<R, BM, /*kTransposed=*/true>(bits, lay, walk, mask_rows, t);
    cp_async_wait<1>();
    __syncthreads();  // dO and the statistics have landed
    float st[R][BM / 8][4], dpt[R][BM / 8][4];
    warp_gemm_abt<T, R, BM, D>(dpt, v_frags, sdO, P, lane);  // dPᵀ: keys x queries
    cp_async_wait<0>();
    __syncthreads();  // Q has landed
    warp_gemm_abt<T, R, BM, D>(st, k_frags, sQ, P, lane);  // Sᵀ
    if constexpr (kMasked) apply_mask<R, BM>(st, bits);
    // This thread's columns' statistics lie contiguously (StatCopy): lse2, then delta BM floats on.
    const float* stats = sStat + t * (BM / 4);
#pragma unroll
    for (int j = 0; j < BM / 8; ++j) {
      const float2 lse2 = *reinterpret_cast<const float2*>(stats + 2 * j);
      const float2 delta = *reinterpret_cast<const float2*>(stats + BM + 2 * j);
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const float pv = exp2f(fmaf(st[r][j][c], p.scale_log2, -(c % 2 ? lse2.y : lse2.x)));
          st[r][j][c] = pv;                                              // Pᵀ
          dpt[r][j][c] = pv * (dpt[r][j][c] - (c % 2 ? delta.y : delta.x));  // dSᵀ
        }
      }
    }
    warp_gemm_rega_b<T, R, D, BM>(dv, st, sdO, P, lane);
    walk.next();
    __syncthreads();  // every warp is done with dO and the statistics
    load_do();
    warp_gemm_rega_b<T, R, D, BM>(dk, dpt, sQ, P, lane);
    __syncthreads();  // every warp is done with Q
    load_q();
  };
  walk_tiles(walk, step);  // steady-state loop
  cp_async_wait<0>();
  __syncthreads();  // with no tile to visit, the K and V copies of other threads land only here

  // The warp's rows of sK / sV are read by this warp only.
  float one[R][2], scale[R][2];
#pragma unroll
  for (int r = 0; r < R; ++r) one[r][0] = one[r][1] = 1.f, scale[r][0] = scale[r][1] = p.scale;
  T* dk_out = static_cast<T*>(p.dk) + (int64_t)bh * n * D;
  T* dv_out = static_cast<T*>(p.dv) + (int64_t)bh * n * D;
  store_warp_rows<T, R, D>(dk_out, sK + 16 * R * warp * P, dk, scale, n0 + 16 * R * warp, n, lane);
  store_warp_rows<T, R, D>(dv_out, sV + 16 * R * warp * P, dv, one, n0 + 16 * R * warp, n, lane);
}

template <class Traits, class T>
__global__ void __launch_bounds__(Traits::kThreads) bwd_q_kernel(const __grid_constant__ BwdParams p) {
  constexpr int D = Traits::kHeadDim, BM = Traits::kBlockM, BN = Traits::kBlockN, R = Traits::kRowBlocks;
  constexpr int P = Traits::kPitch, NT = Traits::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  // K and V: kStages x kBlockN rows each.
  T *sQ = reinterpret_cast<T*>(smem), *sdO = sQ + BM * P, *sK = sdO + BM * P, *sV = sK + Traits::kStages * BN * P;
  uint32_t* sSchedule = reinterpret_cast<uint32_t*>(sV + Traits::kStages * BN * P);

  const int n = p.tokens_total;
  const RowTile<BM> cta(n);
  const int bh = cta.bh, m0 = cta.row0, m1 = cta.row1;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, t = lane % 4;
  const BwdSlice<T> x(p, bh);

  RowCopy<T, BM, D, NT>(x.q, p.q_stride.row, sQ, tid).issue(m0, n);
  RowCopy<T, BM, D, NT>(x.dout, p.do_stride.row, sdO, tid).issue(m0, n);
  cp_async_commit();
  const RowCopy<T, BN, D, NT> k_copy(x.k, p.k_stride.row, sK, tid);
  const RowCopy<T, BN, D, NT> v_copy(x.v, p.v_stride.row, sV, tid);
  const FrameLayout lay = load_schedule(sSchedule, p.layout, p.frames, p.tokens, m0, m1, /*by_key=*/false, tid, NT);
  ColumnWalk walk = column_walk(sSchedule, lay, BN);
  // The two buffers: `stage` is the element offset of the current one in sK and sV (0 or BN·P);
  // one XOR swaps it.
  int stage = 0;
  auto load = [&](int offset) {
    k_copy.issue(walk.column0(), n, offset);
    v_copy.issue(walk.column0(), n, offset);
  };
  if (!walk.done()) load(0);
  cp_async_commit();

  // Per-row statistics in registers; rows past N get lse2 = +inf, so their P is 0.
  const FragmentRows<R> queries(m0, warp, lane, p.tokens, p.frames);
  const MaskRows<R> mask_rows(queries.frame, m0, m1, p.tokens);
  float lse2[R][2], delta[R][2];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int i = queries.row[r][half];
      lse2[r][half] = i < n ? x.lse2[i] : INFINITY;
      delta[r][half] = i < n ? x.delta[i] : 0.f;
    }
  }
  float dq[R][D / 8][4];
  clear<R, D>(dq);
  if (tile_has_self_term(lay, m0, m1, m0, m1)) {
    queries.for_self_terms(lay, n, [&](int r, int half, int i, bool applies) {
      float pi;
      const float dsi = x.template self_grad<D>(p, i, t, &pi);
      if (applies) seed_fragment_row<T, D>(dq[r], half, x.k + i * p.k_stride.row, dsi, t);
    });
  }

  const SharedA<T, R, D> q_frags(sQ + 16 * R * warp * P, P, lane), do_frags(sdO + 16 * R * warp * P, P, lane);
  // One key tile, in buffer `stage`; the walk moves on and the next tile is copied meanwhile.
  auto step = [&](auto masked) {
    constexpr bool kMasked = decltype(masked)::value;
    uint32_t bits[R];
    if constexpr (kMasked) tile_mask<R, BN, /*kTransposed=*/false>(bits, lay, walk, mask_rows, t);
    walk.next();
    if (!walk.done()) load(stage ^ BN * P);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();  // this step's tile has landed

    const T* sKs = sK + stage;
    const T* sVs = sV + stage;
    float s[R][BN / 8][4], dp[R][BN / 8][4];
    warp_gemm_abt<T, R, BN, D>(s, q_frags, sKs, P, lane);
    warp_gemm_abt<T, R, BN, D>(dp, do_frags, sVs, P, lane);
    if constexpr (kMasked) apply_mask<R, BN>(s, bits);
    for_each_element<R, BN>([&](int r, int j, int c) {
      const float pv = exp2f(fmaf(s[r][j][c], p.scale_log2, -lse2[r][c / 2]));
      s[r][j][c] = pv * (dp[r][j][c] - delta[r][c / 2]);  // dS
    });
    warp_gemm_rega_b<T, R, D, BN>(dq, s, sKs, P, lane);
    __syncthreads();  // every warp is done with this buffer before it is refilled
    stage ^= BN * P;
  };
  walk_tiles(walk, step);  // steady-state loop
  cp_async_wait<0>();
  __syncthreads();  // with no tile to visit, the Q and dO copies of other threads land only here

  float scale[R][2];
#pragma unroll
  for (int r = 0; r < R; ++r) scale[r][0] = scale[r][1] = p.scale;
  T* dq_out = static_cast<T*>(p.dq) + (int64_t)bh * n * D;
  store_warp_rows<T, R, D>(dq_out, sQ + 16 * R * warp * P, dq, scale, m0 + 16 * R * warp, n, lane);
}

// delta and lse2, then dK and dV, then dQ, in order on one stream.
template <int D, class T>
void run_bwd(const BwdParams& p, int64_t batch_heads, cudaStream_t stream) {
  using KV = BwdKVTraits<D>;
  using Q = BwdQTraits<D>;
  const int64_t n = p.tokens_total, rows = batch_heads * n;
  constexpr int kRowsPerBlock = 8;  // one warp per row
  launch_kernel(delta_kernel<T>, "delta_kernel", (rows + kRowsPerBlock - 1) / kRowsPerBlock, 32 * kRowsPerBlock, 0,
                stream, static_cast<const T*>(p.dout), p.do_stride, static_cast<const T*>(p.out), p.lse, p.dlse,
                p.delta, p.lse2, p.heads, p.tokens_total, D, rows);
  launch_kernel(bwd_kv_kernel<KV, T>, "bwd_kv_kernel", RowTile<KV::kBlockN>::grid_size(n, batch_heads), KV::kThreads,
                KV::smem_bytes(p.frames), stream, p);
  launch_kernel(bwd_q_kernel<Q, T>, "bwd_q_kernel", RowTile<Q::kBlockM>::grid_size(n, batch_heads), Q::kThreads,
                Q::smem_bytes(p.frames), stream, p);
}

}  // namespace kron_attn::cuda
