// Compile-time tiling of each kernel per head dim, kept apart from the kernel bodies.
//
// Every warp owns 16 rows of the tile it writes (one m16 row block of mma.m16n8k16), so the
// number of warps fixes the row tile: forward and dQ tile queries, dK/dV tiles keys. Shared
// memory rows are padded by 8 elements (16 bytes): with a row pitch of D + 8 elements the eight
// 16-byte rows one ldmatrix phase reads start in eight different 4-bank groups for every D
// here (pitch = 4 mod 32 banks for D = 64, 128; 20 mod 32 for D = 32, 96), so the ldmatrix
// reads are free of bank conflicts without a swizzle.
#pragma once

namespace kron_attn::cuda {

// Forward: a CTA takes kBlockM queries and streams kBlockN keys per step through kStages
// shared-memory buffers (cp.async double buffering). Small head dims afford 8 warps (128
// queries) so that each K/V tile loaded serves more queries.
template <int kHeadDim_>
struct FwdTraits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWarps = kHeadDim <= 64 ? 8 : 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockM = 16 * kWarps;
  static constexpr int kBlockN = 64;
  static constexpr int kStages = 2;
  static constexpr int kPitch = kHeadDim + 8;
  // Q tile, then kStages K tiles and kStages V tiles (contiguous, so the self-term prologue
  // can load kBlockM rows of K and V into them).
  static constexpr int kSmemElems = (kBlockM + 2 * kStages * kBlockN) * kPitch;
  static_assert(kHeadDim % 16 == 0, "head dim must be a multiple of 16");
  static_assert(kStages * kBlockN >= kBlockM, "the K/V buffers must hold the self-term rows");
};

// Backward over keys (dK, dV): a CTA keeps kBlockN keys (K and V) in shared memory and streams
// kBlockM queries (Q, dO, lse, delta) per step. Its accumulators are dK and dV, 2 x 16 x D
// floats per warp, so large head dims take smaller query steps to stay clear of spills.
template <int kHeadDim_>
struct BwdKVTraits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockN = 16 * kWarps;
  static constexpr int kBlockM = kHeadDim <= 64 ? 64 : 32;
  static constexpr int kStages = 2;
  static constexpr int kPitch = kHeadDim + 8;
  static constexpr int kSmemElems = (2 * kBlockN + 2 * kStages * kBlockM) * kPitch;
  static constexpr int kSmemFloats = 2 * kStages * kBlockM;  // lse and delta per stage
  static_assert(kHeadDim % 16 == 0, "head dim must be a multiple of 16");
  static_assert(kStages * kBlockM >= kBlockN, "the Q/dO buffers must hold the self-term rows");
};

// Backward over queries (dQ): a CTA keeps kBlockM queries (Q, dO) and streams kBlockN keys.
// 32-key steps for large head dims keep shared memory at 69,632 bytes at D = 128 (plus the
// layout bits), under the 101,376 bytes per block of sm_86/89/120.
template <int kHeadDim_>
struct BwdQTraits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockM = 16 * kWarps;
  static constexpr int kBlockN = kHeadDim <= 64 ? 64 : 32;
  static constexpr int kStages = 2;
  static constexpr int kPitch = kHeadDim + 8;
  static constexpr int kSmemElems = (2 * kBlockM + 2 * kStages * kBlockN) * kPitch;
  static_assert(kHeadDim % 16 == 0, "head dim must be a multiple of 16");
  static_assert(kStages * kBlockN >= kBlockM, "the K/V buffers must hold the self-term rows");
};

}  // namespace kron_attn::cuda
