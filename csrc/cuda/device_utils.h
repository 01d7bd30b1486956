// Device building blocks shared by the kernels: PTX wrappers (cp.async, ldmatrix,
// mma.m16n8k16), tile loads, the layout in shared memory, the element mask, the cp.async
// pipeline over scheduled tiles, and the two warp-level products every kernel is made of.
//
// Fragment layouts of mma.m16n8k16 (PTX ISA, "matrix fragments for mma.m16n8k16"), with
// g = lane / 4 (group) and t = lane % 4 (thread in group):
//   A 16x16, 4 x .b32: reg0 = (row g,   cols 2t, 2t+1)    reg1 = (row g+8, cols 2t, 2t+1)
//                      reg2 = (row g,   cols 2t+8, 2t+9)  reg3 = (row g+8, cols 2t+8, 2t+9)
//   B 16x8,  2 x .b32: reg0 = (rows 2t, 2t+1, col g)      reg1 = (rows 2t+8, 2t+9, col g)
//   C 16x8,  4 x f32:  c0, c1 = (row g, cols 2t, 2t+1)    c2, c3 = (row g+8, cols 2t, 2t+1)
// ldmatrix.x4 loads four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i
// and register i of every lane receives (row g, cols 2t, 2t+1) of matrix i (with .trans: of
// its transpose, i.e. (rows 2t, 2t+1, col g) of the stored matrix).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "../schedule.h"
#include "params.h"

namespace kron_attn::cuda {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

#ifdef KRON_ATTN_EMULATE
// Compiled for the SIMT emulator (csrc/cuda_emu): the PTX below runs as calls into it. These
// wrappers (and Elem<T>::mma) are the only source that differs between GPU and emulator.

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  emu::cp_async(dst, src, 16, valid ? 16 : 0);
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool valid) {
  emu::cp_async(dst, src, 4, valid ? 4 : 0);
}
__device__ __forceinline__ void cp_async_commit() { emu::cp_async_commit(); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  emu::cp_async_wait(N);
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) { emu::ldmatrix_x4(r, p, false); }
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { emu::ldmatrix_x4(r, p, true); }

#else

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy that bypasses L1. With valid = false the source size is 0: no
// byte is read and the destination is zero-filled (rows past N).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}

__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 4 : 0)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p))
               : "memory");
}

#endif

// Element-type specifics: the mma variant, packing two floats into one A register, and the
// conversion to float (torch builds with __CUDA_NO_*_CONVERSIONS__, so nothing is implicit).
template <class T>
struct Elem;

template <>
struct Elem<__nv_bfloat16> {
  __device__ __forceinline__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef KRON_ATTN_EMULATE
    emu::mma_m16n8k16(emu::MmaType::kBF16, d, a, b0, b1);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
  }
  // lo goes to the low half: the element with the smaller column index.
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
  __device__ __forceinline__ static float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
};

template <>
struct Elem<__half> {
  __device__ __forceinline__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef KRON_ATTN_EMULATE
    emu::mma_m16n8k16(emu::MmaType::kF16, d, a, b0, b1);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
  }
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
  __device__ __forceinline__ static float to_float(__half x) { return __half2float(x); }
};

// acc (16 x N) += A (16 x K) * B (N x K)ᵀ, both operands row-major in shared memory with
// pitches lda, ldb (elements). Both are read with plain ldmatrix: A's rows are the m index,
// B's rows the n index with k contiguous, which is the "col" B operand of mma.row.col.
template <class T, int N, int K>
__device__ __forceinline__ void warp_gemm_abt(float (&acc)[N / 8][4], const T* a, int lda, const T* b, int ldb,
                                              int lane) {
  static_assert(N % 16 == 0 && K % 16 == 0, "tile sizes must be multiples of 16");
  // A: matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15) in register order 0..3.
  const T* a_lane = a + (lane % 16) * lda + (lane / 16) * 8;
  // B: matrix 0 = (n 0-7, k 0-7), 1 = (n 0-7, k 8-15), 2 = (n 8-15, k 0-7), 3 = (n 8-15, k 8-15):
  // registers 0, 1 are the B operand of n-block 0, registers 2, 3 that of n-block 1.
  const T* b_lane = b + ((lane % 8) + (lane / 16) * 8) * ldb + ((lane / 8) % 2) * 8;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t af[4];
    ldmatrix_x4(af, a_lane + kk * 16);
#pragma unroll
    for (int nn = 0; nn < N / 16; ++nn) {
      uint32_t bf[4];
      ldmatrix_x4(bf, b_lane + nn * 16 * ldb + kk * 16);
      Elem<T>::mma(acc[2 * nn], af, bf[0], bf[1]);
      Elem<T>::mma(acc[2 * nn + 1], af, bf[2], bf[3]);
    }
  }
}

// acc (16 x N) += A (16 x K) * B (K x N). A is in registers in the accumulator (C) layout of a
// previous product, K / 8 fragments of 16 x 8 floats: the C fragments of columns 16kk..16kk+7
// and 16kk+8..16kk+15 are exactly the A registers (0, 1) and (2, 3) of k-step kk once packed to
// 16 bits (the FlashAttention-2 register reuse: P never goes through shared memory). B is
// row-major (K rows of N) in shared memory, so it is k-major and read with ldmatrix.trans.
template <class T, int N, int K>
__device__ __forceinline__ void warp_gemm_rega_b(float (&acc)[N / 8][4], const float (&a)[K / 8][4], const T* b,
                                                 int ldb, int lane) {
  static_assert(N % 16 == 0 && K % 16 == 0, "tile sizes must be multiples of 16");
  // Matrices: 0 = (k 0-7, n 0-7), 1 = (k 8-15, n 0-7), 2 = (k 0-7, n 8-15), 3 = (k 8-15, n 8-15).
  const T* b_lane = b + (lane % 16) * ldb + (lane / 16) * 8;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t af[4];
    af[0] = Elem<T>::pack(a[2 * kk][0], a[2 * kk][1]);
    af[1] = Elem<T>::pack(a[2 * kk][2], a[2 * kk][3]);
    af[2] = Elem<T>::pack(a[2 * kk + 1][0], a[2 * kk + 1][1]);
    af[3] = Elem<T>::pack(a[2 * kk + 1][2], a[2 * kk + 1][3]);
#pragma unroll
    for (int nn = 0; nn < N / 16; ++nn) {
      uint32_t bf[4];
      ldmatrix_x4_trans(bf, b_lane + kk * 16 * ldb + nn * 16);
      Elem<T>::mma(acc[2 * nn], af, bf[0], bf[1]);
      Elem<T>::mma(acc[2 * nn + 1], af, bf[2], bf[3]);
    }
  }
}

// Rows [row0, row0 + kRows) of one (b, h) slice -> shared memory (pitch kD + 8), 16 bytes per
// cp.async; rows at or past n are zero-filled and never read from global memory.
template <class T, int kRows, int kD, int kThreads>
__device__ __forceinline__ void load_rows_async(T* dst, const T* src, int64_t row_stride, int row0, int n, int tid) {
  constexpr int kChunks = kD / 8;  // 8 x 16-bit = 16 bytes
#pragma unroll
  for (int c = tid; c < kRows * kChunks; c += kThreads) {
    const int r = c / kChunks, ch = c % kChunks;
    const bool ok = row0 + r < n;
    const T* s = ok ? src + (int64_t)(row0 + r) * row_stride + ch * 8 : src;
    cp_async16(dst + r * (kD + 8) + ch * 8, s, ok);
  }
}

// kRows floats of a contiguous (B*H, N) statistic starting at row0; past n: zero.
template <int kRows, int kThreads>
__device__ __forceinline__ void load_stat_async(float* dst, const float* src, int row0, int n, int tid) {
  for (int r = tid; r < kRows; r += kThreads) {
    const bool ok = row0 + r < n;
    cp_async4(dst + r, ok ? src + row0 + r : src, ok);
  }
}

// The layout's T packed rows (schedule.h, T²/8 bytes) copied from the kernel parameters to shared
// memory, where FrameLayout reads them: the device runs the very same tile_kind / next_tile /
// needs_self_term code as the host. Callers synchronise before reading it.
__device__ __forceinline__ FrameLayout load_layout(uint32_t* dst, const LayoutBits& bits, int frames, int tokens,
                                                   int tid, int threads) {
  const int row_words = layout_row_words(frames);
  for (int i = tid; i < frames * row_words; i += threads) {
    dst[i] = bits.words[(i / row_words) * kLayoutRowWords + i % row_words];
  }
  return FrameLayout{dst, row_words, frames, tokens};
}

// Shared-memory bytes of the packed layout, rounded to 16 so any later region stays aligned.
inline constexpr size_t layout_smem_bytes(int frames) {
  return (static_cast<size_t>(frames) * layout_row_words(frames) * 4 + 15) / 16 * 16;
}

// Dot product of two shared-memory rows of length kD, split over the 4 lanes of a quad (each
// takes a contiguous quarter) and summed with two shuffles, so all 4 lanes hold the result.
template <class T, int kD>
__device__ __forceinline__ float quad_dot(const T* x, const T* y, int t) {
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kD / 4; ++i) {
    const int d = t * (kD / 4) + i;
    s += Elem<T>::to_float(x[d]) * Elem<T>::to_float(y[d]);
  }
  s += __shfl_xor_sync(0xffffffffu, s, 1);
  s += __shfl_xor_sync(0xffffffffu, s, 2);
  return s;
}

// Max / sum over the 4 lanes of a quad: the lanes that share the rows of a C fragment.
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// A warp's 16 rows of C fragments (16 x kD floats, times `mul`) -> its 16 rows of the shared
// tile `tile` (pitch kD + 8) -> global rows [row0, row0 + 16) of a contiguous (.., N, kD)
// output, 16 bytes per store, rows at or past n skipped. Only the warp's own rows are touched.
template <class T, int kD>
__device__ __forceinline__ void store_warp_rows(T* out, T* tile, const float (&acc)[kD / 8][4], const float (&mul)[2],
                                                int row0, int n, int lane) {
  constexpr int kPitch = kD + 8;
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < kD / 8; ++j) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const uint32_t v = Elem<T>::pack(acc[j][2 * half] * mul[half], acc[j][2 * half + 1] * mul[half]);
      *reinterpret_cast<uint32_t*>(tile + (g + 8 * half) * kPitch + 8 * j + 2 * t) = v;
    }
  }
  __syncwarp();
  constexpr int kChunks = kD / 8;
#pragma unroll
  for (int c = lane; c < 16 * kChunks; c += 32) {
    const int r = c / kChunks, ch = c % kChunks;
    if (row0 + r < n) {
      *reinterpret_cast<uint4*>(out + (int64_t)(row0 + r) * kD + ch * 8) =
          *reinterpret_cast<const uint4*>(tile + r * kPitch + ch * 8);
    }
  }
}

// The score-side mask of one (row tile, column tile) product held in C fragments: rows are the
// fragment rows (frame rf[half]), columns col0 + 8j + 2t + e. Every column past N is masked; the
// layout is read only on PARTIAL tiles. `transposed`: rows are keys and columns queries, so the
// layout is read as layout[column frame][row frame].
template <int kCols>
__device__ __forceinline__ void mask_fragment(bool (&ok)[kCols / 8][4], const FrameLayout& lay, bool partial,
                                              const int (&rf)[2], int col0, int n, int t, bool transposed) {
#pragma unroll
  for (int j = 0; j < kCols / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int col = col0 + 8 * j + 2 * t + e;
      const bool in = col < n;
      ok[j][e] = in;
      ok[j][2 + e] = in;
      if (partial && in) {
        const int cf = col / lay.tokens;
        ok[j][e] = transposed ? lay.allowed(cf, rf[0]) : lay.allowed(rf[0], cf);
        ok[j][2 + e] = transposed ? lay.allowed(cf, rf[1]) : lay.allowed(rf[1], cf);
      }
    }
  }
}

// The cp.async pipeline over the column tiles the block schedule keeps for one row tile: kStages
// shared-memory slots; start() loads the first kStages - 1 scheduled tiles and returns the first
// tile, refill(stage) at each step loads the next one into the slot the previous step used. Each
// of them commits exactly one group (empty when nothing is left), so cp_async_wait<kStages - 1>
// after refill always covers the current step's tile. load(tile, slot) issues the copies.
template <int kStages, class Load>
struct TilePipeline {
  const FrameLayout& lay;
  int count, block, n, r0, r1;
  bool by_key;
  Load load;
  int to_load = 0;

  __device__ __forceinline__ int next(int from) const { return next_tile(lay, from, count, block, n, r0, r1, by_key); }

  __device__ __forceinline__ int start() {
    to_load = next(0);
    const int first = to_load;
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (to_load < count) {
        load(to_load, s);
        to_load = next(to_load + 1);
      }
      cp_async_commit();
    }
    return first;
  }

  __device__ __forceinline__ void refill(int stage) {
    if (to_load < count) {
      load(to_load, (stage + kStages - 1) % kStages);
      to_load = next(to_load + 1);
    }
    cp_async_commit();
  }
};

template <int kStages, class Load>
__device__ __forceinline__ TilePipeline<kStages, Load> tile_pipeline(const FrameLayout& lay, int count, int block,
                                                                     int n, int r0, int r1, bool by_key, Load load) {
  return TilePipeline<kStages, Load>{lay, count, block, n, r0, r1, by_key, load};
}

}  // namespace kron_attn::cuda
