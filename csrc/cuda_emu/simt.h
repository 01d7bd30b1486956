// SIMT emulator: runs CUDA kernel source, compiled for the host, on the CPU.
//
// Every CUDA thread of a CTA is a fiber; fibers run one at a time on one OS thread until they
// block at a barrier or a warp-collective, so a CTA executes with the interleavings a GPU may
// choose at those points. The kernel source is unchanged except for the PTX wrappers, which call
// the functions below; the CUDA built-ins come from the stand-in headers in include/.
//
// Checks, each reported as the launch's error (the first fault, with the kernel, block, threads
// and shared-memory offset it concerns):
//   - shared-memory races: a read of another thread's write, or a write over another thread's
//     read or write, with no __syncthreads between them. Threads of one warp are ordered by a
//     __syncwarp or any warp-collective (shuffle, ldmatrix, mma) that both took part in;
//   - cp.async: the destination reads as NaN (0xFF bytes) from the issue, and any access to it
//     is an error, until the cp.async.wait_group that covers its group; data lands then;
//   - reads of shared memory no thread of the CTA has written;
//   - bounds: shared accesses past the dynamic shared memory the launch asked for (or before it),
//     global accesses outside the buffers the launch registered (within 1 MiB of one); cp.async
//     and ldmatrix alignment; the launch's shared-memory request against the per-block limit;
//   - barriers: __syncthreads reached from two different source lines; warp-collectives whose
//     lanes disagree (different operation or mask) or wait for a lane that has exited;
//     deadlock; a thread exiting with cp.async copies in flight.
// Plain loads and stores of the kernel are seen through the compiler's ThreadSanitizer
// instrumentation (-fsanitize=thread on the kernel translation units): this emulator supplies
// the __tsan_* entry points itself and links no sanitizer runtime.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include <string>

namespace kron_attn::emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// ---- device side: called by the kernels (through include/ and the PTX wrappers) -------------
// (Built-ins return copies: kernel code must not read the emulator's own memory.)

Dim3 thread_idx();
Dim3 block_idx();
Dim3 block_dim();
Dim3 grid_dim();

void syncthreads(const char* file, int line);
void syncwarp(const char* file, int line, unsigned mask = 0xffffffffu);
uint64_t shfl_xor_bits(unsigned mask, uint64_t bits, int lane_mask, int width);

template <class T>
T shfl_xor(unsigned mask, T value, int lane_mask, int width) {
  static_assert(sizeof(T) <= 8, "__shfl_xor_sync moves at most 8 bytes");
  uint64_t bits = 0;
  memcpy(&bits, &value, sizeof(T));
  bits = shfl_xor_bits(mask, bits, lane_mask, width);
  memcpy(&value, &bits, sizeof(T));
  return value;
}

// cp.async.{ca,cg}.shared.global [dst], [src], bytes, src_bytes: src_bytes < bytes zero-fills
// the rest (0 reads nothing).
void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes);
void cp_async_commit();
// cp.async.wait_group n: until at most n committed groups of this thread are in flight.
void cp_async_wait(int n);

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lanes 8i..8i+7 give the rows of matrix i.
void ldmatrix_x4(uint32_t (&r)[4], const void* row, bool trans);

enum class MmaType { kBF16, kF16 };
// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32, accumulating into d. The
// products are exact and summed with one rounding to float32.
void mma_m16n8k16(MmaType type, float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

// ---- host side -----------------------------------------------------------------------------

// A global-memory buffer a launch may touch. Kernels may only read a buffer marked read-only.
struct Buffer {
  const char* name;
  const void* base;
  size_t bytes;
  bool writable;
};

// The buffers of the launches made from this OS thread while the scope lives.
class BufferScope {
 public:
  BufferScope(const Buffer* buffers, int count);
  ~BufferScope();
  BufferScope(const BufferScope&) = delete;
  BufferScope& operator=(const BufferScope&) = delete;

 private:
  const Buffer* saved_;
  int saved_count_;
};

// Where the kernels' dynamic shared memory lives: the `extern __shared__` array of the kernel
// translation units (a thread_local, see include/cuda_runtime.h), with a guard array on either
// side. Defined once per module by KRON_ATTN_EMU_DYNAMIC_SHARED.
struct SharedStorage {
  unsigned char* (*below)();  // this OS thread's guard before the array
  unsigned char* (*array)();  // ... the array
  unsigned char* (*above)();  // ... the guard after it
  size_t guard_bytes, array_bytes;
};
bool register_shared_storage(const SharedStorage& storage);

struct Options {
  uint64_t schedule_seed = 0;           // 0: threads run in index order; else a seeded shuffle
  size_t shared_limit = 101376;         // bytes of dynamic shared memory a block may ask for
};
Options& options();

struct Launch {
  const char* kernel;
  Dim3 grid, block;
  size_t dynamic_shared;
};

// Runs every CTA of the grid (CTAs in parallel over OpenMP threads); body() is one CUDA thread's
// execution of the kernel. Returns "" or the description of the first fault.
std::string run(const Launch& launch, void (*body)(void*), void* arg);

template <class F>
std::string run(const Launch& launch, F& body) {
  return run(launch, [](void* f) { (*static_cast<F*>(f))(); }, &body);
}

}  // namespace kron_attn::emu

// Defines the dynamic shared memory of the kernels declared `extern __shared__ ... NAME[]` in
// namespace NS: once per module, in a translation unit compiled with -fno-toplevel-reorder where
// nothing declares NAME before, so that the guards sit on either side of the array.
#define KRON_ATTN_EMU_DYNAMIC_SHARED(NS, NAME)                                                              \
  namespace NS {                                                                                             \
  alignas(128) thread_local unsigned char NAME##_guard_below[4096];                                          \
  alignas(128) thread_local unsigned char NAME[232448];                                                      \
  alignas(128) thread_local unsigned char NAME##_guard_above[4096];                                          \
  }                                                                                                          \
  static const bool NAME##_registered = ::kron_attn::emu::register_shared_storage(                          \
      {[]() -> unsigned char* { return NS::NAME##_guard_below; }, []() -> unsigned char* { return NS::NAME; }, \
       []() -> unsigned char* { return NS::NAME##_guard_above; }, 4096, 232448});
