// Device building blocks shared by the kernels: PTX wrappers (cp.async, ldmatrix,
// mma.m16n8k16), the element types, the two warp-level products every kernel is made of, quad
// reductions, the schedule in shared memory, and the row loads and stores of prologues and
// epilogues.
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

#include <type_traits>

#include "../constants.h"
#include "../schedule.h"
#include "kernel_traits.h"
#include "params.h"

namespace kron_attn::cuda {

// Out of line on the GPU (rarely run code kept out of a hot body's registers); any on the host.
#ifdef KRON_ATTN_EMULATE
#define KA_NOINLINE inline
#else
#define KA_NOINLINE __noinline__
#endif

#ifdef KRON_ATTN_EMULATE
// Compiled for the SIMT emulator (csrc/cuda_emu): the PTX below runs as calls into it. These
// wrappers (and mma below) are the only source that differs between GPU and emulator.

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

// Element-type specifics: packing two floats into one 16-bit pair (an mma A register; lo goes to
// the low half, the element with the smaller column index) and the conversion to float (torch
// builds with __CUDA_NO_*_CONVERSIONS__, so nothing is implicit).
template <class T>
struct Elem;

// A 16-bit pair as the 32-bit register mma takes.
template <class Pair>
__device__ __forceinline__ uint32_t pair_bits(Pair v) {
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <>
struct Elem<__nv_bfloat16> {
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    return pair_bits(__floats2bfloat162_rn(lo, hi));
  }
  __device__ __forceinline__ static float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
};

template <>
struct Elem<__half> {
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) { return pair_bits(__floats2half2_rn(lo, hi)); }
  __device__ __forceinline__ static float to_float(__half x) { return __half2float(x); }
};

#define KA_MMA_16816(type, c)                                                                       \
  "mma.sync.aligned.m16n8k16.row.col.f32." type "." type ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, " \
  "{%8, %9}, " c ";\n"

// d (+)= a b, mma.m16n8k16 with fp32 accumulation. kZero: d = a b, the accumulator starting from
// zero inside the instruction (C = RZ), so no register is cleared first.
template <class T, bool kZero = false>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
#ifdef KRON_ATTN_EMULATE
  if constexpr (kZero) d[0] = d[1] = d[2] = d[3] = 0.f;
  emu::mma_m16n8k16(kBf16 ? emu::MmaType::kBF16 : emu::MmaType::kF16, d, a, b0, b1);
#else
  if constexpr (kZero && kBf16) {
    asm volatile(KA_MMA_16816("bf16", "{%10, %10, %10, %10}")
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.f));
  } else if constexpr (kZero) {
    asm volatile(KA_MMA_16816("f16", "{%10, %10, %10, %10}")
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.f));
  } else if constexpr (kBf16) {
    asm volatile(KA_MMA_16816("bf16", "{%0, %1, %2, %3}")
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(KA_MMA_16816("f16", "{%0, %1, %2, %3}")
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#endif
}
#undef KA_MMA_16816

// A warp's rows of a product are kR row blocks of 16 (one mma m16 block each): row block r is the
// warp's rows 16r .. 16r + 15, and a C-fragment array float[kR][N / 8][4] holds them. A B fragment
// is read once per k-step and feeds every row block.

// The A operand of warp_gemm_abt: 16kR x K, row-major in shared memory (pitch lda elements), read
// with plain ldmatrix (A's rows are the m index).
template <class T, int kR, int K>
struct SharedA {
  const T* lane_row;  // this lane's ldmatrix row: matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15)
  int lda;
  __device__ __forceinline__ SharedA(const T* a, int lda_, int lane)
      : lane_row(a + (lane % 16) * lda_ + (lane / 16) * 8), lda(lda_) {}
  __device__ __forceinline__ void fragment(int r, int kk, uint32_t (&af)[4]) const {
    ldmatrix_x4(af, lane_row + r * 16 * lda + kk * 16);
  }
};

// One k-step of a warp's product: acc (+)= af B for the k-step's A fragments af, B read one 16-column
// block at a time by load_b(nn, bf) (registers 0, 1: the B operand of n-block 2nn; 2, 3: that of
// 2nn + 1), each B fragment feeding every row block. kZero: acc = af B.
template <class T, int kR, int N, bool kZero, class LoadB>
__device__ __forceinline__ void mma_k_step(float (&acc)[kR][N / 8][4], const uint32_t (&af)[kR][4], LoadB&& load_b) {
#pragma unroll
  for (int nn = 0; nn < N / 16; ++nn) {
    uint32_t bf[4];
    load_b(nn, bf);
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      mma<T, kZero>(acc[r][2 * nn], af[r], bf[0], bf[1]);
      mma<T, kZero>(acc[r][2 * nn + 1], af[r], bf[2], bf[3]);
    }
  }
}

// acc (16kR x N) (+)= A (16kR x K) * B (N x K)ᵀ, B row-major in shared memory with pitch ldb
// (elements), read with plain ldmatrix: B's rows are the n index with k contiguous, which is the
// "col" B operand of mma.row.col. Without kAccumulate the first k-step starts acc from zero.
template <class T, int kR, int N, int K, bool kAccumulate = false>
__device__ __forceinline__ void warp_gemm_abt(float (&acc)[kR][N / 8][4], const SharedA<T, kR, K>& a, const T* b,
                                              int ldb, int lane) {
  static_assert(N % 16 == 0 && K % 16 == 0, "tile sizes must be multiples of 16");
  // B: matrix 0 = (n 0-7, k 0-7), 1 = (n 0-7, k 8-15), 2 = (n 8-15, k 0-7), 3 = (n 8-15, k 8-15):
  // registers 0, 1 are the B operand of n-block 0, registers 2, 3 that of n-block 1.
  const T* b_lane = b + ((lane % 8) + (lane / 16) * 8) * ldb + ((lane / 8) % 2) * 8;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t af[kR][4];
#pragma unroll
    for (int r = 0; r < kR; ++r) a.fragment(r, kk, af[r]);
    auto load_b = [&](int nn, uint32_t (&bf)[4]) { ldmatrix_x4(bf, b_lane + nn * 16 * ldb + kk * 16); };
    if (kAccumulate || kk > 0) {
      mma_k_step<T, kR, N, false>(acc, af, load_b);
    } else {
      mma_k_step<T, kR, N, true>(acc, af, load_b);
    }
  }
}

// acc (16kR x N) += A (16kR x K) * B (K x N). A is in registers in the accumulator (C) layout of
// a previous product, K / 8 fragments of 16 x 8 floats per row block: the C fragments of columns
// 16kk..16kk+7 and 16kk+8..16kk+15 are exactly the A registers (0, 1) and (2, 3) of k-step kk
// once packed to 16 bits (the FlashAttention-2 register reuse: P never goes through shared
// memory). B is row-major (K rows of N) in shared memory, so it is k-major and read with
// ldmatrix.trans.
template <class T, int kR, int N, int K>
__device__ __forceinline__ void warp_gemm_rega_b(float (&acc)[kR][N / 8][4], const float (&a)[kR][K / 8][4],
                                                 const T* b, int ldb, int lane) {
  static_assert(N % 16 == 0 && K % 16 == 0, "tile sizes must be multiples of 16");
  // Matrices: 0 = (k 0-7, n 0-7), 1 = (k 8-15, n 0-7), 2 = (k 0-7, n 8-15), 3 = (k 8-15, n 8-15).
  const T* b_lane = b + (lane % 16) * ldb + (lane / 16) * 8;
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) {
    uint32_t af[kR][4];
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      af[r][0] = Elem<T>::pack(a[r][2 * kk][0], a[r][2 * kk][1]);
      af[r][1] = Elem<T>::pack(a[r][2 * kk][2], a[r][2 * kk][3]);
      af[r][2] = Elem<T>::pack(a[r][2 * kk + 1][0], a[r][2 * kk + 1][1]);
      af[r][3] = Elem<T>::pack(a[r][2 * kk + 1][2], a[r][2 * kk + 1][3]);
    }
    mma_k_step<T, kR, N, false>(acc, af, [&](int nn, uint32_t (&bf)[4]) {
      ldmatrix_x4_trans(bf, b_lane + kk * 16 * ldb + nn * 16);
    });
  }
}

// f(r, j, c) for every element of a C-fragment array float[kR][kN / 8][4]. Unrolled, so that the
// indices are constants once f is inlined and the array stays in registers.
template <int kR, int kN, class F>
__device__ __forceinline__ void for_each_element(F&& f) {
#pragma unroll
  for (int r = 0; r < kR; ++r) {
#pragma unroll
    for (int j = 0; j < kN / 8; ++j) {
#pragma unroll
      for (int c = 0; c < 4; ++c) f(r, j, c);
    }
  }
}

template <int kR, int kD>
__device__ __forceinline__ void clear(float (&acc)[kR][kD / 8][4]) {
  for_each_element<kR, kD>([&](int r, int j, int c) { acc[r][j][c] = 0.f; });
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

// Dot product of two global rows of length kD, split over the 4 lanes of a quad (lane t takes the
// contiguous quarter t, 16 bytes at a time) and summed with two shuffles: all 4 lanes hold it.
// Rows are 16-byte aligned (the op wrapper guarantees it of every row). For the self term only.
template <class T, int kD>
__device__ __forceinline__ float quad_dot(const T* x, const T* y, int t) {
  static_assert(kD % 32 == 0, "a quarter row must be whole 16-byte chunks");
  constexpr int kVec = 16 / sizeof(T);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kD / 4; i += kVec) {
    const uint4 a = *reinterpret_cast<const uint4*>(x + t * (kD / 4) + i);
    const uint4 b = *reinterpret_cast<const uint4*>(y + t * (kD / 4) + i);
    const T* ea = reinterpret_cast<const T*>(&a);
    const T* eb = reinterpret_cast<const T*>(&b);
#pragma unroll
    for (int e = 0; e < kVec; ++e) s += Elem<T>::to_float(ea[e]) * Elem<T>::to_float(eb[e]);
  }
  return quad_sum(s);
}

// mul times one global row of length kD at this thread's C-fragment columns (8j + 2t, 8j + 2t + 1)
// into row half `half` of the fragments `dst`: a row of an accumulator seeded by the self term.
template <class T, int kD>
__device__ __forceinline__ void seed_fragment_row(float (&dst)[kD / 8][4], int half, const T* row, float mul, int t) {
#pragma unroll
  for (int j = 0; j < kD / 8; ++j) {
    const uint32_t two = *reinterpret_cast<const uint32_t*>(row + 8 * j + 2 * t);
    const T* e = reinterpret_cast<const T*>(&two);
    dst[j][2 * half] = mul * Elem<T>::to_float(e[0]);
    dst[j][2 * half + 1] = mul * Elem<T>::to_float(e[1]);
  }
}

// The rows [row0, row1) of one (b, h) that a CTA owns, in tiles of kRows rows over N. The tiles of
// one (b, h) are adjacent in blockIdx.x (grid_size), so that CTAs running together share the
// operand they stream in L2.
template <int kRows>
struct RowTile {
  int bh, row0, row1;

  __device__ __forceinline__ explicit RowTile(int n) {
    const int tiles = (n + kRows - 1) / kRows;
    bh = blockIdx.x / tiles;
    row0 = blockIdx.x % tiles * kRows;
    row1 = min(row0 + kRows, n);
  }

  static int64_t grid_size(int64_t n, int64_t batch_heads) { return (n + kRows - 1) / kRows * batch_heads; }
};

// This thread's rows of a tile (C-fragment rows g and g + 8 of each of its warp's kR row blocks)
// and their frames; rows past N take frame T - 1 so that layout lookups stay in bounds.
template <int kR>
struct FragmentRows {
  int row[kR][2], frame[kR][2];

  __device__ __forceinline__ FragmentRows(int row0, int warp, int lane, int tokens, int frames) {
#pragma unroll
    for (int r = 0; r < kR; ++r) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        row[r][half] = row0 + 16 * (kR * warp + r) + lane / 4 + 8 * half;
        frame[r][half] = min(row[r][half] / tokens, frames - 1);
      }
    }
  }

  // f(r, half, i, applies) for each row: applies when the row is inside N and its own frame pair is
  // blocked (its self term counts); i is the row clamped to N - 1, since every lane of a quad takes
  // part in the self term's dot products.
  template <class F>
  __device__ __forceinline__ void for_self_terms(const FrameLayout& lay, int n, F&& f) const {
#pragma unroll
    for (int r = 0; r < kR; ++r) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        f(r, half, min(row[r][half], n - 1), row[r][half] < n && lay.needs_self_term(frame[r][half]));
      }
    }
  }
};

// The schedule of one row tile in shared memory at `dst` (schedule_smem_bytes): the walk table of
// row tokens [r0, r1), then the layout's packed rows, copied from the kernel parameters. The table's
// per-frame flags are computed in parallel and scanned by one thread (T <= 128 additions). The
// device runs the very same schedule code as the host. Every thread calls (barriers inside); all
// is ready on return.
__device__ __forceinline__ FrameLayout load_schedule(uint32_t* dst, const LayoutBits& bits, int frames, int tokens,
                                                     int r0, int r1, bool by_key, int tid, int threads) {
  uint32_t* prefix = dst;
  uint32_t* words = dst + kWalkSmemBytes / 4;
  const int row_words = layout_row_words(frames);
  for (int i = tid; i < frames * row_words; i += threads) {
    words[i] = bits.words[(i / row_words) * kLayoutRowWords + i % row_words];
  }
  const FrameLayout lay{words, row_words, frames, tokens};
  __syncthreads();
  const int f0 = r0 / tokens, f1 = (r1 - 1) / tokens;
  for (int u = tid; u < frames; u += threads) prefix[u + 1] = walk_frame_flags(lay, f0, f1, u, by_key);
  __syncthreads();
  if (tid == 0) {
    uint32_t sum = 0;
    prefix[0] = 0;
    for (int u = 1; u <= frames; ++u) prefix[u] = sum += prefix[u];
  }
  __syncthreads();
  return lay;
}

// The walk over column tiles of `block` columns for the row tile whose schedule load_schedule put
// at `schedule`.
__device__ __forceinline__ ColumnWalk column_walk(const uint32_t* schedule, const FrameLayout& lay, int block) {
  return ColumnWalk::start(schedule, lay.frames, lay.tokens, block);
}

// The tiles left in the walk, one step(kMasked) each, kMasked a std::bool_constant: FULL and PARTIAL
// tiles run separate copies of the body, so the FULL one holds no mask code. step moves the walk on.
template <class Step>
__device__ __forceinline__ void walk_tiles(const ColumnWalk& walk, Step&& step) {
  while (!walk.done()) {
    if (walk.kind == TILE_FULL) {
      step(std::false_type{});
    } else {
      step(std::true_type{});
    }
  }
}

// A warp's 16kR rows of C fragments (16 x kD floats per row block, times mul[r][half]) -> the
// warp's rows of the shared tile `tile` (pitch kD + 8) -> global rows [row0, row0 + 16kR) of a
// contiguous (.., N, kD) output, 16 bytes per store, rows at or past n skipped. Only the warp's
// own rows are touched.
template <class T, int kR, int kD>
__device__ __forceinline__ void store_warp_rows(T* out, T* tile, const float (&acc)[kR][kD / 8][4],
                                                const float (&mul)[kR][2], int row0, int n, int lane) {
  constexpr int kPitch = kD + 8;
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int r = 0; r < kR; ++r) {
#pragma unroll
    for (int j = 0; j < kD / 8; ++j) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const uint32_t v = Elem<T>::pack(acc[r][j][2 * half] * mul[r][half], acc[r][j][2 * half + 1] * mul[r][half]);
        *reinterpret_cast<uint32_t*>(tile + (16 * r + g + 8 * half) * kPitch + 8 * j + 2 * t) = v;
      }
    }
  }
  __syncwarp();
  constexpr int kChunks = kD / 8;
#pragma unroll
  for (int c = lane; c < 16 * kR * kChunks; c += 32) {
    const int r = c / kChunks, ch = c % kChunks;
    if (row0 + r < n) {
      *reinterpret_cast<uint4*>(out + (int64_t)(row0 + r) * kD + ch * 8) =
          *reinterpret_cast<const uint4*>(tile + r * kPitch + ch * 8);
    }
  }
}

}  // namespace kron_attn::cuda
