// Backward kernels (FlashAttention-2 structure, deterministic: no atomics, every output element
// is written by exactly one thread of one CTA):
//   delta_kernel   Δ_i = Σ_d dO_id O_id - dlse_i                         (float32; dlse: the
//                  gradient of lse where lse is used, 0 otherwise: dS = P (dP - Δ_i) takes both)
//   bwd_kv_kernel  one CTA per key tile: over the query tiles the transposed schedule keeps,
//                  Sᵀ = K Qᵀ, Pᵀ = 2^(Sᵀ scale log2e - lse log2e), dPᵀ = V dOᵀ,
//                  dSᵀ = Pᵀ (dPᵀ - Δ), dV += Pᵀ dO, dK += dSᵀ Q;   dK *= scale
//   bwd_q_kernel   one CTA per query tile: over its key tiles, S, P, dP, dS as above,
//                  dQ += dS K;   dQ *= scale
// Working transposed in bwd_kv_kernel (each warp owns 16 keys, the rows of Sᵀ) keeps Pᵀ and dSᵀ
// in the accumulator registers that feed the next products as A operands: nothing goes
// through shared memory but the inputs. dQ is recomputed in its own kernel rather than
// accumulated with atomics across key tiles: two extra products per tile pair buy a
// bit-for-bit reproducible gradient.
// The self term (i == j in a blocked frame pair) seeds the accumulators: P_ii from the saved
// lse, dS_ii = P_ii (dO_i·v_i - Δ_i), dV_i += P_ii dO_i, dK_i += dS_ii q_i, dQ_i += dS_ii k_i.
#pragma once

#include <math.h>

#include "device_utils.h"
#include "kernel_traits.h"
#include "launch.h"
#include "launch_kernel.h"

namespace kron_attn::cuda {

template <class T>
__global__ void delta_kernel(const T* __restrict__ dout, Strides ds, const T* __restrict__ out,
                             const float* __restrict__ dlse, float* __restrict__ delta, int heads, int n, int d,
                             int64_t rows) {
  // One warp per row; out and delta are contiguous, dout only has a contiguous last dimension.
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
  if (lane == 0) delta[r] = dlse != nullptr ? s - dlse[r] : s;
}

template <class Traits, class T>
__global__ void __launch_bounds__(Traits::kThreads) bwd_kv_kernel(const __grid_constant__ BwdParams p) {
  constexpr int D = Traits::kHeadDim, BM = Traits::kBlockM, BN = Traits::kBlockN, S = Traits::kStages;
  constexpr int P = Traits::kPitch, NT = Traits::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  T* sK = reinterpret_cast<T*>(smem);
  T* sV = sK + BN * P;
  T* sQ = sV + BN * P;     // kStages x kBlockM rows
  T* sdO = sQ + S * BM * P;
  float* sLse = reinterpret_cast<float*>(sdO + S * BM * P);
  float* sDelta = sLse + S * BM;
  uint32_t* sLay = reinterpret_cast<uint32_t*>(sDelta + S * BM);

  const int n = p.tokens_total, L = p.tokens;
  const int n_tiles = (n + BN - 1) / BN, m_tiles = (n + BM - 1) / BM;
  const int n_tile = blockIdx.x % n_tiles, bh = blockIdx.x / n_tiles;
  const int b = bh / p.heads, h = bh % p.heads;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  const int n0 = n_tile * BN, n1 = min(n0 + BN, n);

  const T* q = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
  const T* k = static_cast<const T*>(p.k) + b * p.k_stride.batch + h * p.k_stride.head;
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride.batch + h * p.v_stride.head;
  const T* dout = static_cast<const T*>(p.dout) + b * p.do_stride.batch + h * p.do_stride.head;
  const float* lse = p.lse + (int64_t)bh * n;
  const float* delta = p.delta + (int64_t)bh * n;

  load_rows_async<T, BN, D, NT>(sK, k, p.k_stride.row, n0, n, tid);
  load_rows_async<T, BN, D, NT>(sV, v, p.v_stride.row, n0, n, tid);
  cp_async_commit();
  const FrameLayout lay = load_layout(sLay, p.layout, p.frames, L, tid, NT);
  __syncthreads();

  int key[2], kf[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    key[half] = n0 + warp * 16 + g + 8 * half;
    kf[half] = min(key[half] / L, p.frames - 1);
  }
  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
#pragma unroll
    for (int c = 0; c < 4; ++c) dk[j][c] = dv[j][c] = 0.f;
  }

  if (tile_has_self_term(lay, n0, n1, n0, n1)) {
    // Q and dO at the key positions, in the (contiguous) query buffers.
    load_rows_async<T, BN, D, NT>(sQ, q, p.q_stride.row, n0, n, tid);
    load_rows_async<T, BN, D, NT>(sdO, dout, p.do_stride.row, n0, n, tid);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = warp * 16 + g + 8 * half;
      const float qk = quad_dot<T, D>(sQ + r * P, sK + r * P, t);
      const float dov = quad_dot<T, D>(sdO + r * P, sV + r * P, t);
      if (key[half] < n && lay.needs_self_term(kf[half])) {
        const float pj = exp2f(qk * p.scale_log2 - lse[key[half]] * kLog2e);
        const float dsj = pj * (dov - delta[key[half]]);
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int c = r * P + 8 * j + 2 * t + e;
            dv[j][2 * half + e] = pj * Elem<T>::to_float(sdO[c]);
            dk[j][2 * half + e] = dsj * Elem<T>::to_float(sQ[c]);
          }
        }
      }
    }
    __syncthreads();
  }

  auto pipe = tile_pipeline<S>(lay, m_tiles, BM, n, n0, n1, /*by_key=*/true, [&](int tile, int slot) {
    load_rows_async<T, BM, D, NT>(sQ + slot * BM * P, q, p.q_stride.row, tile * BM, n, tid);
    load_rows_async<T, BM, D, NT>(sdO + slot * BM * P, dout, p.do_stride.row, tile * BM, n, tid);
    load_stat_async<BM, NT>(sLse + slot * BM, lse, tile * BM, n, tid);
    load_stat_async<BM, NT>(sDelta + slot * BM, delta, tile * BM, n, tid);
  });
  const T* sKw = sK + warp * 16 * P;
  const T* sVw = sV + warp * 16 * P;
  int stage = 0;
  for (int mt = pipe.start(); mt < m_tiles; mt = pipe.next(mt + 1)) {
    pipe.refill(stage);
    cp_async_wait<S - 1>();
    __syncthreads();

    const T* sQs = sQ + stage * BM * P;
    const T* sdOs = sdO + stage * BM * P;
    const float* sLses = sLse + stage * BM;
    const float* sDeltas = sDelta + stage * BM;
    float st[BM / 8][4], dpt[BM / 8][4];
#pragma unroll
    for (int j = 0; j < BM / 8; ++j) {
#pragma unroll
      for (int c = 0; c < 4; ++c) st[j][c] = dpt[j][c] = 0.f;
    }
    warp_gemm_abt<T, BM, D>(st, sKw, P, sQs, P, lane);    // Sᵀ: 16 keys x BM queries
    warp_gemm_abt<T, BM, D>(dpt, sVw, P, sdOs, P, lane);  // dPᵀ

    const int m0 = mt * BM, m1 = min(m0 + BM, n);
    bool ok[BM / 8][4];
    mask_fragment<BM>(ok, lay, tile_kind(lay, m0, m1, n0, n1) == TILE_PARTIAL, kf, m0, n, t, /*transposed=*/true);
#pragma unroll
    for (int j = 0; j < BM / 8; ++j) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int qi = 8 * j + 2 * t + (c & 1);  // query column within the tile
        const float pv = ok[j][c] ? exp2f(st[j][c] * p.scale_log2 - sLses[qi] * kLog2e) : 0.f;
        st[j][c] = pv;                              // Pᵀ
        dpt[j][c] = pv * (dpt[j][c] - sDeltas[qi]);  // dSᵀ
      }
    }
    warp_gemm_rega_b<T, D, BM>(dv, st, sdOs, P, lane);
    warp_gemm_rega_b<T, D, BM>(dk, dpt, sQs, P, lane);

    __syncthreads();
    stage = (stage + 1) % S;
  }
  cp_async_wait<0>();

  // The warp's rows of sK / sV are read by this warp only.
  const float one[2] = {1.f, 1.f}, sc[2] = {p.scale, p.scale};
  T* dk_out = static_cast<T*>(p.dk) + (int64_t)bh * n * D;
  T* dv_out = static_cast<T*>(p.dv) + (int64_t)bh * n * D;
  __syncwarp();
  store_warp_rows<T, D>(dk_out, sK + warp * 16 * P, dk, sc, n0 + warp * 16, n, lane);
  store_warp_rows<T, D>(dv_out, sV + warp * 16 * P, dv, one, n0 + warp * 16, n, lane);
}

template <class Traits, class T>
__global__ void __launch_bounds__(Traits::kThreads) bwd_q_kernel(const __grid_constant__ BwdParams p) {
  constexpr int D = Traits::kHeadDim, BM = Traits::kBlockM, BN = Traits::kBlockN, S = Traits::kStages;
  constexpr int P = Traits::kPitch, NT = Traits::kThreads;
  extern __shared__ __align__(16) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);
  T* sdO = sQ + BM * P;
  T* sK = sdO + BM * P;  // kStages x kBlockN rows
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
  const T* dout = static_cast<const T*>(p.dout) + b * p.do_stride.batch + h * p.do_stride.head;
  const float* lse = p.lse + (int64_t)bh * n;
  const float* delta = p.delta + (int64_t)bh * n;

  load_rows_async<T, BM, D, NT>(sQ, q, p.q_stride.row, m0, n, tid);
  load_rows_async<T, BM, D, NT>(sdO, dout, p.do_stride.row, m0, n, tid);
  cp_async_commit();
  const FrameLayout lay = load_layout(sLay, p.layout, p.frames, L, tid, NT);
  __syncthreads();

  // Per-row statistics in registers; rows past N get lse = +inf, so their P is 0.
  int row[2], qf[2];
  float lse2[2], dlt[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    row[half] = m0 + warp * 16 + g + 8 * half;
    qf[half] = min(row[half] / L, p.frames - 1);
    const bool in = row[half] < n;
    lse2[half] = in ? lse[row[half]] * kLog2e : INFINITY;
    dlt[half] = in ? delta[row[half]] : 0.f;
  }
  float dq[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.f;

  if (tile_has_self_term(lay, m0, m1, m0, m1)) {
    load_rows_async<T, BM, D, NT>(sK, k, p.k_stride.row, m0, n, tid);
    load_rows_async<T, BM, D, NT>(sV, v, p.v_stride.row, m0, n, tid);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = warp * 16 + g + 8 * half;
      const float qk = quad_dot<T, D>(sQ + r * P, sK + r * P, t);
      const float dov = quad_dot<T, D>(sdO + r * P, sV + r * P, t);
      if (row[half] < n && lay.needs_self_term(qf[half])) {
        const float ds = exp2f(qk * p.scale_log2 - lse2[half]) * (dov - dlt[half]);
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          dq[j][2 * half] = ds * Elem<T>::to_float(sK[r * P + 8 * j + 2 * t]);
          dq[j][2 * half + 1] = ds * Elem<T>::to_float(sK[r * P + 8 * j + 2 * t + 1]);
        }
      }
    }
    __syncthreads();
  }

  auto pipe = tile_pipeline<S>(lay, k_tiles, BN, n, m0, m1, /*by_key=*/false, [&](int tile, int slot) {
    load_rows_async<T, BN, D, NT>(sK + slot * BN * P, k, p.k_stride.row, tile * BN, n, tid);
    load_rows_async<T, BN, D, NT>(sV + slot * BN * P, v, p.v_stride.row, tile * BN, n, tid);
  });
  const T* sQw = sQ + warp * 16 * P;
  const T* sdOw = sdO + warp * 16 * P;
  int stage = 0;
  for (int kt = pipe.start(); kt < k_tiles; kt = pipe.next(kt + 1)) {
    pipe.refill(stage);
    cp_async_wait<S - 1>();
    __syncthreads();

    const T* sKs = sK + stage * BN * P;
    const T* sVs = sV + stage * BN * P;
    float sc[BN / 8][4], dp[BN / 8][4];
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
#pragma unroll
      for (int c = 0; c < 4; ++c) sc[j][c] = dp[j][c] = 0.f;
    }
    warp_gemm_abt<T, BN, D>(sc, sQw, P, sKs, P, lane);
    warp_gemm_abt<T, BN, D>(dp, sdOw, P, sVs, P, lane);

    const int n0 = kt * BN, n1 = min(n0 + BN, n);
    bool ok[BN / 8][4];
    mask_fragment<BN>(ok, lay, tile_kind(lay, m0, m1, n0, n1) == TILE_PARTIAL, qf, n0, n, t, /*transposed=*/false);
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int half = c / 2;
        const float pv = ok[j][c] ? exp2f(sc[j][c] * p.scale_log2 - lse2[half]) : 0.f;
        sc[j][c] = pv * (dp[j][c] - dlt[half]);  // dS
      }
    }
    warp_gemm_rega_b<T, D, BN>(dq, sc, sKs, P, lane);

    __syncthreads();
    stage = (stage + 1) % S;
  }
  cp_async_wait<0>();

  const float sc2[2] = {p.scale, p.scale};
  T* dq_out = static_cast<T*>(p.dq) + (int64_t)bh * n * D;
  __syncwarp();
  store_warp_rows<T, D>(dq_out, sQ + warp * 16 * P, dq, sc2, m0 + warp * 16, n, lane);
}

// delta, dK and dV, then dQ, in order on one stream.
template <int D, class T>
void run_bwd(const BwdParams& p, int64_t batch_heads, cudaStream_t stream) {
  using KV = BwdKVTraits<D>;
  using Q = BwdQTraits<D>;
  const size_t lay = layout_smem_bytes(p.frames);
  const int64_t n = p.tokens_total, rows = batch_heads * n;
  constexpr int kRowsPerBlock = 8;  // one warp per row
  launch_kernel(delta_kernel<T>, "delta_kernel", (rows + kRowsPerBlock - 1) / kRowsPerBlock, 32 * kRowsPerBlock, 0,
                stream, static_cast<const T*>(p.dout), p.do_stride, static_cast<const T*>(p.out), p.dlse, p.delta,
                p.heads, p.tokens_total, D, rows);
  launch_kernel(bwd_kv_kernel<KV, T>, "bwd_kv_kernel", (n + KV::kBlockN - 1) / KV::kBlockN * batch_heads,
                KV::kThreads, KV::kSmemElems * sizeof(T) + KV::kSmemFloats * sizeof(float) + lay, stream, p);
  launch_kernel(bwd_q_kernel<Q, T>, "bwd_q_kernel", (n + Q::kBlockM - 1) / Q::kBlockM * batch_heads, Q::kThreads,
                Q::kSmemElems * sizeof(T) + lay, stream, p);
}

}  // namespace kron_attn::cuda
