// Compile-time tiling of each kernel per head dim, kept apart from the kernel bodies.
//
// A warp owns kRowBlocks x 16 rows of the tile it writes (one m16 row block of mma.m16n8k16 each):
// two row blocks let every B fragment read from shared memory feed two mma (FlashAttention-2's 32
// rows per warp), where the registers allow it. Forward and dQ tile queries, dK/dV tiles keys.
// Shared memory rows are padded by 8 elements (16 bytes): with a row pitch of D + 8 elements the
// eight 16-byte rows one ldmatrix phase reads start in eight different 4-bank groups for every D
// here (pitch = 4 mod 32 banks for D = 64, 128; 20 mod 32 for D = 32, 96), so the ldmatrix reads
// are free of bank conflicts without a swizzle.
//
// Every size here is checked by the static profile (benchmarks/static_profile): registers without
// spills, CTAs per SM, instructions per mma of the steady-state loop.
#pragma once

#include <stddef.h>

#include "../schedule.h"
#include "coverage.h"

namespace kron_attn::cuda {

constexpr size_t kElemBytes = 2;  // bfloat16 and float16

// Shared-memory bytes of the schedule every kernel keeps behind its tiles: the walk table
// (schedule.h's walk_prefix, T + 1 words), sized for kMaxFrames so that the walk reads it at a
// fixed offset, then the packed layout (T²/8 bytes); each rounded to 16 so that any later region
// stays aligned.
constexpr size_t kWalkSmemBytes = ((kMaxFrames + 1) * 4 + 15) / 16 * 16;
constexpr size_t layout_smem_bytes(int frames) {
  return (static_cast<size_t>(frames) * layout_row_words(frames) * 4 + 15) / 16 * 16;
}
constexpr size_t schedule_smem_bytes(int frames) { return kWalkSmemBytes + layout_smem_bytes(frames); }

// What every kernel's tiling shares: four warps, warp w writing rows [16·kRowBlocks·w,
// 16·kRowBlocks·(w + 1)) of the kTileRows rows of the CTA's tile, shared-memory rows padded to
// kPitch. A derived traits class names its members through itself (FwdTraits::kPitch): the base
// depends on the template parameter.
template <int kHeadDim_, int kRowBlocks_>
struct WarpTiling {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWarps = 4;
  static constexpr int kRowBlocks = kRowBlocks_;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kTileRows = 16 * kRowBlocks * kWarps;
  static constexpr int kPitch = kHeadDim + 8;
  static_assert(kHeadDim % 32 == 0, "head dim must be a multiple of 32");
};

// Forward: a CTA takes kBlockM queries and streams kBlockN keys per step. K and V have one buffer
// each: V of a step is copied while S = Q Kᵀ is computed, the next K while P V is (FlashAttention-
// 2's order), which keeps shared memory at 69,632 bytes at D = 128: two CTAs per SM on an A100.
template <int kHeadDim_>
struct FwdTraits : WarpTiling<kHeadDim_, kHeadDim_ <= 64 ? 2 : 1> {
  static constexpr int kBlockM = FwdTraits::kTileRows;
  static constexpr int kBlockN = 64;
  static constexpr int kSmemElems = (kBlockM + 2 * kBlockN) * FwdTraits::kPitch;  // Q, K, V
  static constexpr size_t smem_bytes(int frames) { return kSmemElems * kElemBytes + schedule_smem_bytes(frames); }
};

// Backward over keys (dK, dV): a CTA keeps kBlockN keys (K and V) in shared memory and streams
// kBlockM queries (Q, dO, lse·log2 e, delta) per step, one buffer each: dO of a step is copied
// while the previous step's dK product runs, Q while dPᵀ is (61,312 bytes at D = 128: two CTAs
// per SM on an A100). Its accumulators are dK and dV, 2 x 16 x D floats per warp: one row block
// per warp, and at D = 128 48-query steps keep the registers clear of spills.
template <int kHeadDim_>
struct BwdKVTraits : WarpTiling<kHeadDim_, 1> {
  static constexpr int kBlockN = BwdKVTraits::kTileRows;
  static constexpr int kBlockM = kHeadDim_ <= 96 ? 64 : 48;  // 64 at D = 128 spills
  static constexpr int kSmemElems = (2 * kBlockN + 2 * kBlockM) * BwdKVTraits::kPitch;  // K, V, Q, dO
  static constexpr int kSmemFloats = 2 * kBlockM;                                       // lse·log2 e, delta
  static constexpr size_t smem_bytes(int frames) {
    return kSmemElems * kElemBytes + kSmemFloats * 4 + schedule_smem_bytes(frames);
  }
};

// Backward over queries (dQ): a CTA keeps kBlockM queries (Q, dO) and streams kBlockN keys (K, V)
// through kStages buffers. 32-key steps keep shared memory at 69,632 bytes at D = 128 (plus the
// schedule), under the 101,376 bytes per block of sm_86/89/120.
template <int kHeadDim_>
struct BwdQTraits : WarpTiling<kHeadDim_, kHeadDim_ <= 64 ? 2 : 1> {
  static constexpr int kBlockM = BwdQTraits::kTileRows;
  static constexpr int kBlockN = 32;
  static constexpr int kStages = 2;
  static constexpr int kSmemElems = (2 * kBlockM + 2 * kStages * kBlockN) * BwdQTraits::kPitch;
  static constexpr size_t smem_bytes(int frames) { return kSmemElems * kElemBytes + schedule_smem_bytes(frames); }
};

}  // namespace kron_attn::cuda
