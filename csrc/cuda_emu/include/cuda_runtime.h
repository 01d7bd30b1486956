// Stand-in for <cuda_runtime.h> when CUDA kernel source is compiled for the SIMT emulator
// (../simt.h): the CUDA qualifiers, built-in variables and intrinsics the kernels use, as host
// code. Found before any CUDA toolkit header because the emulator build puts this folder first
// on the include path.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../simt.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))
// Shared memory is per CTA; the emulator runs a CTA's threads on one OS thread, so a
// thread_local is exactly that. `extern __shared__` arrays are defined by
// KRON_ATTN_EMU_DYNAMIC_SHARED (simt.h).
#define __shared__ thread_local

typedef struct CUstream_st* cudaStream_t;

struct uint3 {
  unsigned x, y, z;
};
struct __align__(16) uint4 {
  unsigned x, y, z, w;
};
struct __align__(8) float2 {
  float x, y;
};

#define threadIdx (::kron_attn::emu::thread_idx())
#define blockIdx (::kron_attn::emu::block_idx())
#define blockDim (::kron_attn::emu::block_dim())
#define gridDim (::kron_attn::emu::grid_dim())
#define warpSize 32

#define __syncthreads() ::kron_attn::emu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::kron_attn::emu::syncwarp(__FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__)

template <class T>
inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize) {
  return ::kron_attn::emu::shfl_xor(mask, value, lane_mask, width);
}

// CUDA's integer min/max overloads (device code calls them unqualified).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
