// Body of the CPU kernel, compiled once per instruction set by csrc/cpu/kernel_<isa>.cpp.
//
// Forward, per (b, h, query tile of one frame):
//   the tile's rows start their online softmax with the self term when their frame's diagonal
//   block is blocked (so no row is ever empty), then visit the runs of allowed key frames in
//   chunks of kKeyCols keys: S = Qs Kᵀ (Qs = Q * scale * log2 e), softmax in base 2, O += P V.
//   Query tiles never straddle a frame and key chunks never leave a run, so no element is
//   ever masked and no blocked pair is ever computed.
// Backward, per (b, h, group of query tiles), FlashAttention-2 style with the saved LSE:
//   P = exp2(S - lse2), dS = P (dP - Δ) scale, dV += Pᵀ dO, dK += dSᵀ Q, dQ += dS K.
//   dK, dV accumulate in the group's own workspace; reduce() sums groups in a fixed order,
//   so results are deterministic.
// All GEMMs go through one register-tiled micro-kernel C (+)= A B with a broadcast A operand of
// arbitrary strides and a row-major B; K and V are packed per (b, h) as Kᵀ, Vᵀ (for S, dP)
// and row-major padded copies (for O and dQ).
#pragma once

#include <cmath>

#include "../constants.h"
#include "kernel.h"
#include "simd.h"

namespace kron_attn::cpu::KA_ISA_NS {

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static inline int min_int(int a, int b) { return a < b ? a : b; }

// Owns zero-initialised scratch memory; no STL so nothing here is shared across ISAs.
template <class T>
struct Buffer {
  T* p;
  explicit Buffer(int64_t n) {
    p = static_cast<T*>(calloc(static_cast<size_t>(n > 0 ? n : 1), sizeof(T)));
    if (p == nullptr) throw std::bad_alloc();
  }
  ~Buffer() { free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

template <class T>
constexpr bool kVectorExp = std::is_same<T, float>::value && KA_CPU_ISA > 0;

// std::exp2 and std::log2 pick the float or the double builtin by overload.
template <class T>
static inline T scalar_exp2(T x) {
  return std::exp2(x);
}

template <class T>
static inline T scalar_log2(T x) {
  return std::log2(x);
}

// ---------------------------------------------------------------- GEMM micro-kernel

// C[MR x NV*W] (+)= sum_k a[r*ars + k*aks] * B[k*ldb + :]
template <class T, int MR, int NV, bool ACC>
static void ukernel(int K, const T* a, int64_t ars, int64_t aks, const T* b, int64_t ldb, T* c,
                    int64_t ldc) {
  using V = Vec<T>;
  using R = typename V::R;
  R acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = ACC ? V::load(c + r * ldc + v * V::W) : V::zero();
  }
  for (int k = 0; k < K; ++k) {
    R bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + k * ldb + v * V::W);
    const T* ak = a + k * aks;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const R av = V::set1(ak[r * ars]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) V::store(c + r * ldc + v * V::W, acc[r][v]);
  }
}

template <class T, int NV, bool ACC>
static void gemm_panel(int M, int K, const T* a, int64_t ars, int64_t aks, const T* b,
                       int64_t ldb, T* c, int64_t ldc) {
  constexpr int MR = Vec<T>::MR;
  static_assert(MR <= 6, "the remainder switch below covers MR <= 6");
  int m = 0;
  for (; m + MR <= M; m += MR) ukernel<T, MR, NV, ACC>(K, a + m * ars, ars, aks, b, ldb, c + m * ldc, ldc);
  a += m * ars;
  c += m * ldc;
  switch (M - m) {
    case 1: ukernel<T, 1, NV, ACC>(K, a, ars, aks, b, ldb, c, ldc); break;
    case 2: ukernel<T, 2, NV, ACC>(K, a, ars, aks, b, ldb, c, ldc); break;
    case 3: ukernel<T, 3, NV, ACC>(K, a, ars, aks, b, ldb, c, ldc); break;
    case 4: ukernel<T, 4, NV, ACC>(K, a, ars, aks, b, ldb, c, ldc); break;
    case 5: ukernel<T, 5, NV, ACC>(K, a, ars, aks, b, ldb, c, ldc); break;
    default: break;
  }
}

// C[M x nvec*W] (+)= A[M x K] B[K x nvec*W]; A is read through strides (ars, aks).
template <class T, bool ACC>
static void gemm(int M, int nvec, int K, const T* a, int64_t ars, int64_t aks, const T* b,
                 int64_t ldb, T* c, int64_t ldc) {
  constexpr int NV = Vec<T>::NV, W = Vec<T>::W;
  static_assert(NV <= 4, "the remainder switch below covers NV <= 4");
  int v = 0;
  for (; v + NV <= nvec; v += NV) gemm_panel<T, NV, ACC>(M, K, a, ars, aks, b + v * W, ldb, c + v * W, ldc);
  b += v * W;
  c += v * W;
  switch (nvec - v) {
    case 1: gemm_panel<T, 1, ACC>(M, K, a, ars, aks, b, ldb, c, ldc); break;
    case 2: gemm_panel<T, 2, ACC>(M, K, a, ars, aks, b, ldb, c, ldc); break;
    case 3: gemm_panel<T, 3, ACC>(M, K, a, ars, aks, b, ldb, c, ldc); break;
    default: break;
  }
}

// ---------------------------------------------------------------- row operations

template <class T>
static T dot(const T* x, const T* y, int n) {
  using V = Vec<T>;
  typename V::R acc = V::zero();
  int i = 0;
  for (; i + V::W <= n; i += V::W) acc = V::fma(V::load(x + i), V::load(y + i), acc);
  T s = V::hsum(acc);
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

template <class T>
static T row_max(const T* x, int n) {
  using V = Vec<T>;
  T m = -__builtin_inf();
  int i = 0;
  if (n >= V::W) {
    typename V::R acc = V::load(x);
    for (i = V::W; i + V::W <= n; i += V::W) acc = V::max(acc, V::load(x + i));
    m = V::hmax(acc);
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// x[i] = 2^(x[i] - shift) for i < n; returns the sum.
template <class T>
static T exp2_shifted_sum(T* x, int n, T shift) {
  using V = Vec<T>;
  int i = 0;
  T s = 0;
  if constexpr (kVectorExp<T>) {
    const typename V::R sv = V::set1(shift);
    typename V::R acc = V::zero();
    for (; i + V::W <= n; i += V::W) {
      const typename V::R e = V::exp2(V::sub(V::load(x + i), sv));
      V::store(x + i, e);
      acc = V::add(acc, e);
    }
    s = V::hsum(acc);
  }
  for (; i < n; ++i) {
    x[i] = scalar_exp2(x[i] - shift);
    s += x[i];
  }
  return s;
}

// p[i] = 2^(p[i] - lse2); ds[i] = p[i] * (ds[i] - delta) * scale, for i < n.
template <class T>
static void softmax_grad_row(T* p, T* ds, int n, T lse2, T delta, T scale) {
  using V = Vec<T>;
  int i = 0;
  if constexpr (kVectorExp<T>) {
    const typename V::R lv = V::set1(lse2), dv = V::set1(delta), sv = V::set1(scale);
    for (; i + V::W <= n; i += V::W) {
      const typename V::R e = V::exp2(V::sub(V::load(p + i), lv));
      V::store(p + i, e);
      V::store(ds + i, V::mul(V::mul(e, V::sub(V::load(ds + i), dv)), sv));
    }
  }
  for (; i < n; ++i) {
    p[i] = scalar_exp2(p[i] - lse2);
    ds[i] = p[i] * (ds[i] - delta) * scale;
  }
}

// y[0:n] += a * x[0:n]; n is a multiple of the vector width (padded rows).
template <class T>
static void axpy(T* y, const T* x, int n, T a) {
  using V = Vec<T>;
  const typename V::R av = V::set1(a);
  for (int i = 0; i < n; i += V::W) V::store(y + i, V::fma(av, V::load(x + i), V::load(y + i)));
}

template <class T>
static void scale_inplace(T* y, int n, T a) {
  using V = Vec<T>;
  const typename V::R av = V::set1(a);
  for (int i = 0; i < n; i += V::W) V::store(y + i, V::mul(av, V::load(y + i)));
}

// dst[r * ld + 0:D] = src_row(r)[0:D] * mul; the padding stays zero.
template <class T>
static void pack_rows(T* dst, int64_t ld, const Tensor4<const T>& src, int b, int h, int n0, int rows,
                      int D, T mul) {
  for (int r = 0; r < rows; ++r) {
    const T* s = src.row(b, h, n0 + r);
    T* d = dst + r * ld;
    for (int i = 0; i < D; ++i) d[i] = s[i] * mul;
  }
}

// dst[d * ld + n] = src_row(n)[d] for all N tokens.
template <class T>
static void pack_transposed(T* dst, int64_t ld, const Tensor4<const T>& src, int b, int h, int N, int D) {
  for (int n = 0; n < N; ++n) {
    const T* s = src.row(b, h, n);
    for (int i = 0; i < D; ++i) dst[i * ld + n] = s[i];
  }
}

// What the forward and the backward derive alike from their parameters: the layout, the query
// tiling and its tile count, the sizes, the row pitch Np of a packed Kᵀ or Vᵀ (a vector read past
// the last key stays inside) and that of a score tile, ldS.
struct Sizes {
  FrameLayout lay;
  FrameTiling tiling;
  int tiles, N, D, Dp, L;
  int64_t Np, ldS;
};

template <class T, class Params>
static Sizes sizes_of(const Params& p) {
  const FrameTiling tiling = FrameTiling::make(p.tokens, kQueryRows);
  return {FrameLayout{p.layout, layout_row_words(p.frames), p.frames, p.tokens},
          tiling,
          tiling.num_tiles(p.frames),
          p.N,
          p.D,
          static_cast<int>(padded(p.D)),
          p.tokens,
          round_up(p.N, Vec<T>::W) + kPad,
          kKeyCols + kPad};
}

// ---------------------------------------------------------------- forward

template <class T>
static void forward(const FwdParams<T>& p, int64_t begin, int64_t end) {
  constexpr int W = Vec<T>::W;
  const auto [lay, tiling, tiles, N, D, Dp, L, Np, ldS] = sizes_of<T>(p);
  const T qmul = static_cast<T>(p.scale * kLog2e);  // scores in base-2 units

  Buffer<T> kt(D * Np), vp(static_cast<int64_t>(N) * Dp), qs(kQueryRows * Dp), s(kQueryRows * ldS),
      o(kQueryRows * Dp), m(kQueryRows), l(kQueryRows);
  int64_t packed = -1;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t bh = item / tiles;
    const int tile = static_cast<int>(item % tiles);
    const int b = static_cast<int>(bh / p.H), h = static_cast<int>(bh % p.H);
    if (bh != packed) {
      pack_transposed(kt.p, Np, p.k, b, h, N, D);
      pack_rows(vp.p, Dp, p.v, b, h, 0, N, D, T(1));
      packed = bh;
    }
    int r0, r1;
    tiling.rows(tile, &r0, &r1);
    const int t = tiling.frame_of(tile), nr = r1 - r0;
    pack_rows(qs.p, Dp, p.q, b, h, r0, nr, D, qmul);

    const bool self = lay.needs_self_term(t);
    for (int r = 0; r < nr; ++r) {
      T* orow = o.p + r * Dp;
      if (self) {
        m.p[r] = dot(qs.p + r * Dp, p.k.row(b, h, r0 + r), D);
        l.p[r] = 1;
        for (int i = 0; i < Dp; ++i) orow[i] = vp.p[static_cast<int64_t>(r0 + r) * Dp + i];
      } else {
        m.p[r] = -__builtin_inf();
        l.p[r] = 0;
        for (int i = 0; i < Dp; ++i) orow[i] = 0;
      }
    }

    int u0, u1;
    for (int from = 0; next_frame_run(lay, t, from, &u0, &u1); from = u1) {
      const int run_end = u1 * L;
      for (int n0 = u0 * L; n0 < run_end; n0 += kKeyCols) {
        const int nb = min_int(kKeyCols, run_end - n0);
        gemm<T, false>(nr, (nb + W - 1) / W, D, qs.p, Dp, 1, kt.p + n0, Np, s.p, ldS);
        for (int r = 0; r < nr; ++r) {
          T* srow = s.p + r * ldS;
          const T mx = row_max(srow, nb);
          const T mnew = mx > m.p[r] ? mx : m.p[r];
          const T alpha = scalar_exp2(m.p[r] - mnew);
          const T sum = exp2_shifted_sum(srow, nb, mnew);
          l.p[r] = l.p[r] * alpha + sum;
          m.p[r] = mnew;
          if (alpha != T(1)) scale_inplace(o.p + r * Dp, Dp, alpha);
        }
        gemm<T, true>(nr, Dp / W, nb, s.p, ldS, 1, vp.p + static_cast<int64_t>(n0) * Dp, Dp, o.p, Dp);
      }
    }

    for (int r = 0; r < nr; ++r) {
      const int64_t row = bh * N + r0 + r;
      const T inv = T(1) / l.p[r];
      T* out = p.out + row * D;
      for (int i = 0; i < D; ++i) out[i] = o.p[r * Dp + i] * inv;
      p.lse[row] = (m.p[r] + scalar_log2(l.p[r])) * T(kLn2);
    }
  }
}

// ---------------------------------------------------------------- backward

template <class T>
static void backward(const BwdParams<T>& p, int64_t begin, int64_t end) {
  constexpr int W = Vec<T>::W;
  const auto [lay, tiling, tiles, N, D, Dp, L, Np, ldS] = sizes_of<T>(p);
  const int G = p.groups;
  const int64_t ND = static_cast<int64_t>(N) * Dp;
  const T log2e = T(kLog2e), scale = static_cast<T>(p.scale);

  Buffer<T> kt(D * Np), vt(D * Np), kp(ND), qs(kQueryRows * Dp), qu(kQueryRows * Dp),
      dO(kQueryRows * Dp), dq(kQueryRows * Dp), s(kQueryRows * ldS), dp(kQueryRows * ldS),
      lse2(kQueryRows), delta(kQueryRows);
  int64_t packed = -1;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t bh = item / G;
    const int b = static_cast<int>(bh / p.H), h = static_cast<int>(bh % p.H);
    if (bh != packed) {
      pack_transposed(kt.p, Np, p.k, b, h, N, D);
      pack_transposed(vt.p, Np, p.v, b, h, N, D);
      pack_rows(kp.p, Dp, p.k, b, h, 0, N, D, T(1));
      packed = bh;
    }
    T* dk = p.dk_ws + item * ND;
    T* dv = p.dv_ws + item * ND;
    for (int64_t i = 0; i < ND; ++i) dk[i] = dv[i] = 0;

    for (int tile = static_cast<int>(item % G); tile < tiles; tile += G) {
      int r0, r1;
      tiling.rows(tile, &r0, &r1);
      const int t = tiling.frame_of(tile), nr = r1 - r0;
      pack_rows(qs.p, Dp, p.q, b, h, r0, nr, D, scale * log2e);
      pack_rows(qu.p, Dp, p.q, b, h, r0, nr, D, T(1));
      pack_rows(dO.p, Dp, p.dout, b, h, r0, nr, D, T(1));
      for (int r = 0; r < nr; ++r) {
        lse2.p[r] = p.lse[bh * N + r0 + r] * log2e;
        // Δ = rowsum(dO·O), less the gradient of lse where it is used (dS = P (dP - Δ + dlse)).
        delta.p[r] = dot(dO.p + r * Dp, p.out.row(b, h, r0 + r), D) - (p.dlse ? p.dlse[bh * N + r0 + r] : T(0));
      }
      for (int64_t i = 0; i < nr * Dp; ++i) dq.p[i] = 0;

      if (lay.needs_self_term(t)) {
        for (int r = 0; r < nr; ++r) {
          const int i = r0 + r;
          const T pr = scalar_exp2(dot(qs.p + r * Dp, kp.p + static_cast<int64_t>(i) * Dp, D) - lse2.p[r]);
          const T ds = pr * (dot(dO.p + r * Dp, p.v.row(b, h, i), D) - delta.p[r]) * scale;
          axpy(dv + static_cast<int64_t>(i) * Dp, dO.p + r * Dp, Dp, pr);
          axpy(dk + static_cast<int64_t>(i) * Dp, qu.p + r * Dp, Dp, ds);
          axpy(dq.p + r * Dp, kp.p + static_cast<int64_t>(i) * Dp, Dp, ds);
        }
      }

      int u0, u1;
      for (int from = 0; next_frame_run(lay, t, from, &u0, &u1); from = u1) {
        const int run_end = u1 * L;
        for (int n0 = u0 * L; n0 < run_end; n0 += kKeyCols) {
          const int nb = min_int(kKeyCols, run_end - n0), nvec = (nb + W - 1) / W;
          gemm<T, false>(nr, nvec, D, qs.p, Dp, 1, kt.p + n0, Np, s.p, ldS);
          gemm<T, false>(nr, nvec, D, dO.p, Dp, 1, vt.p + n0, Np, dp.p, ldS);
          for (int r = 0; r < nr; ++r) {
            softmax_grad_row(s.p + r * ldS, dp.p + r * ldS, nb, lse2.p[r], delta.p[r], scale);
          }
          const int64_t key = static_cast<int64_t>(n0) * Dp;
          gemm<T, true>(nb, Dp / W, nr, s.p, 1, ldS, dO.p, Dp, dv + key, Dp);
          gemm<T, true>(nb, Dp / W, nr, dp.p, 1, ldS, qu.p, Dp, dk + key, Dp);
          gemm<T, true>(nr, Dp / W, nb, dp.p, ldS, 1, kp.p + key, Dp, dq.p, Dp);
        }
      }

      for (int r = 0; r < nr; ++r) {
        T* out = p.dq + (bh * N + r0 + r) * D;
        for (int i = 0; i < D; ++i) out[i] = dq.p[r * Dp + i];
      }
    }
  }
}

// Items are (b, h, key token): dk, dv rows = sum over groups, in group order.
template <class T>
static void reduce(const BwdParams<T>& p, T* dk, T* dv, int64_t begin, int64_t end) {
  const int N = p.N, D = p.D, G = p.groups;
  const int64_t Dp = padded(D), ND = static_cast<int64_t>(N) * Dp;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t bh = item / N, n = item % N;
    for (int which = 0; which < 2; ++which) {
      T* out = (which == 0 ? dk : dv) + item * D;
      const T* src = (which == 0 ? p.dk_ws : p.dv_ws) + bh * G * ND + n * Dp;
      for (int i = 0; i < D; ++i) out[i] = src[i];
      for (int g = 1; g < G; ++g) {
        const T* part = src + g * ND;
        for (int i = 0; i < D; ++i) out[i] += part[i];
      }
    }
  }
}

}  // namespace kron_attn::cpu::KA_ISA_NS

#define KA_DEFINE_KERNELS(fn, label)                                                          \
  const kron_attn::cpu::IsaKernels& kron_attn::cpu::fn() {                                    \
    namespace k = kron_attn::cpu::KA_ISA_NS;                                                  \
    static const IsaKernels table{label,           k::forward<float>, k::forward<double>,    \
                                  k::backward<float>, k::backward<double>, k::reduce<float>, \
                                  k::reduce<double>};                                         \
    return table;                                                                             \
  }
