// Minimal SIMD vocabulary for the CPU kernel, one definition per instruction set.
//
// Included by csrc/cpu/kernel_<isa>.cpp only, after `#pragma GCC target(...)` has enabled the
// instruction set named by KA_CPU_ISA (2: AVX-512, 1: AVX2+FMA, 0: portable scalar code).
// Everything lives in a namespace of its own per ISA so that no inline function compiled for a
// wider ISA can be picked by the linker for a narrower one.
#pragma once

#if KA_CPU_ISA > 0
#include <immintrin.h>
#endif

namespace kron_attn::cpu::KA_ISA_NS {

template <class T>
struct Vec;

// 2^x for x <= 0 (or NaN): round-to-nearest range reduction and a degree-7 Taylor polynomial
// of e^(f ln 2), |f| <= 1/2 (relative error below 1e-8). x < -126 flushes to ~2^-126, NaN stays
// NaN; both matter only for rows the caller already treats as empty or poisoned.
#define KA_EXP2_POLY(V, f)                                                                \
  V::fma(V::fma(V::fma(V::fma(V::fma(V::fma(V::fma(V::set1(1.5252733804059841e-05f), f,   \
                                                   V::set1(1.5403530393381606e-04f)),     \
                                             f, V::set1(1.3333558146428443e-03f)),        \
                                       f, V::set1(9.6181291076284772e-03f)),              \
                                 f, V::set1(5.5504108664821580e-02f)),                    \
                           f, V::set1(2.4022650695910071e-01f)),                          \
                     f, V::set1(6.9314718055994531e-01f)),                                \
               f, V::set1(1.0f))

#if KA_CPU_ISA == 2
template <>
struct Vec<float> {
  using R = __m512;
  static constexpr int W = 16, MR = 6, NV = 4;  // register tile: MR rows x NV vectors
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R a) { _mm512_storeu_ps(p, a); }
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float a) { return _mm512_set1_ps(a); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static float hmax(R a) { return _mm512_reduce_max_ps(a); }
  static float hsum(R a) { return _mm512_reduce_add_ps(a); }
  static R exp2(R x) {
    x = _mm512_max_ps(_mm512_set1_ps(-126.f), x);  // NaN is the second operand: kept
    const R n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const R f = _mm512_sub_ps(x, n);
    return _mm512_scalef_ps(KA_EXP2_POLY(Vec, f), n);
  }
};
template <>
struct Vec<double> {
  using R = __m512d;
  static constexpr int W = 8, MR = 6, NV = 4;
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, R a) { _mm512_storeu_pd(p, a); }
  static R zero() { return _mm512_setzero_pd(); }
  static R set1(double a) { return _mm512_set1_pd(a); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static R sub(R a, R b) { return _mm512_sub_pd(a, b); }
  static R max(R a, R b) { return _mm512_max_pd(a, b); }
  static double hmax(R a) { return _mm512_reduce_max_pd(a); }
  static double hsum(R a) { return _mm512_reduce_add_pd(a); }
};
#elif KA_CPU_ISA == 1
template <>
struct Vec<float> {
  using R = __m256;
  static constexpr int W = 8, MR = 6, NV = 2;
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R a) { _mm256_storeu_ps(p, a); }
  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float a) { return _mm256_set1_ps(a); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static float hmax(R a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static float hsum(R a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static R exp2(R x) {
    x = _mm256_max_ps(_mm256_set1_ps(-126.f), x);
    x = _mm256_min_ps(_mm256_set1_ps(128.f), x);
    const R n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const R f = _mm256_sub_ps(x, n);
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(KA_EXP2_POLY(Vec, f), _mm256_castsi256_ps(e));
  }
};
template <>
struct Vec<double> {
  using R = __m256d;
  static constexpr int W = 4, MR = 6, NV = 2;
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, R a) { _mm256_storeu_pd(p, a); }
  static R zero() { return _mm256_setzero_pd(); }
  static R set1(double a) { return _mm256_set1_pd(a); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
  static R sub(R a, R b) { return _mm256_sub_pd(a, b); }
  static R max(R a, R b) { return _mm256_max_pd(a, b); }
  static double hmax(R a) {
    double t[4];
    _mm256_storeu_pd(t, a);
    double m = t[0];
    for (int i = 1; i < 4; ++i) m = t[i] > m ? t[i] : m;
    return m;
  }
  static double hsum(R a) {
    double t[4];
    _mm256_storeu_pd(t, a);
    return (t[0] + t[1]) + (t[2] + t[3]);
  }
};
#else
// Portable scalar code: correct everywhere, fast nowhere; the compiler may still vectorise it.
template <class T>
struct Vec {
  using R = T;
  static constexpr int W = 1, MR = 4, NV = 4;
  static R load(const T* p) { return *p; }
  static void store(T* p, R a) { *p = a; }
  static R zero() { return T(0); }
  static R set1(T a) { return a; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R mul(R a, R b) { return a * b; }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R max(R a, R b) { return b > a ? b : a; }
  static T hmax(R a) { return a; }
  static T hsum(R a) { return a; }
};
#endif

}  // namespace kron_attn::cpu::KA_ISA_NS
