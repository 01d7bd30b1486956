// Stand-in for <cuda_fp16.h> under the SIMT emulator: float16 as 16 bits of storage, with the
// conversions the kernels use (round to nearest even, subnormals kept, overflow to infinity).
#pragma once

#include <math.h>
#include <stdint.h>

#include <bit>

struct __half {
  uint16_t x;
};
struct __half2 {
  __half x, y;
};

inline float __half2float(__half h) {
  const uint32_t sign = uint32_t(h.x & 0x8000u) << 16, exp = (h.x >> 10) & 0x1fu, mant = h.x & 0x3ffu;
  if (exp == 0) return (sign ? -1.f : 1.f) * ldexpf(float(mant), -24);
  return std::bit_cast<float>(sign | (exp == 0x1f ? 0x7f800000u | (mant << 13) : ((exp + 112) << 23) | (mant << 13)));
}

inline __half __float2half_rn(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return {static_cast<uint16_t>(sign | 0x7e00u)};  // NaN
  if (a >= 0x477ff000u) return {static_cast<uint16_t>(sign | 0x7c00u)};  // >= 65520: infinity
  if (a < 0x38800000u) {                                                   // below 2^-14: subnormal
    const float mag = std::bit_cast<float>(a);
    return {static_cast<uint16_t>(sign | static_cast<uint16_t>(lrintf(mag * 16777216.f)))};  // units of 2^-24
  }
  uint32_t h = ((((a >> 23) - 112) << 10) | ((a >> 13) & 0x3ffu));
  const uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return {static_cast<uint16_t>(sign | h)};
}

inline __half2 __floats2half2_rn(float lo, float hi) { return {__float2half_rn(lo), __float2half_rn(hi)}; }
