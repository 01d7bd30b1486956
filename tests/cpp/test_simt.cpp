// Unit tests of the SIMT emulator (csrc/cuda_emu): small CUDA-style kernels, compiled for the host
// with the emulator's instrumentation, each showing one rule it enforces (or one behaviour it
// emulates) and the error it gives when broken. No libtorch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "expect.h"

// The kernels' `extern __shared__` array (no declaration may come before: -fno-toplevel-reorder
// emits variables in the order they are first declared).
KRON_ATTN_EMU_DYNAMIC_SHARED(simt_test, smem)

namespace emu = kron_attn::emu;
using simt_test::smem;

// Runs `body` as a kernel of `blocks` x `threads` with `shared` bytes of dynamic shared memory.
static std::string launch(const char* name, unsigned blocks, unsigned threads, size_t shared,
                          const std::function<void()>& body) {
  auto f = [&] { body(); };
  return emu::run({name, {blocks}, {threads}, shared}, f);
}

static void expect_ok(const char* name, const std::string& fault) {
  EXPECT(fault.empty(), "%s: unexpected fault: %s", name, fault.c_str());
}

static void expect_fault(const char* name, const std::string& fault, const char* kind) {
  EXPECT(fault.find(kind) != std::string::npos, "%s: expected '%s', got '%s'", name, kind, fault.c_str());
}

// ---- shared-memory races ----------------------------------------------------------------------

static void races() {
  // Thread 40 (warp 1) reads what thread 0 (warp 0) wrote: a race without a barrier, fine with one.
  for (bool barrier : {false, true}) {
    const std::string f = launch("race", 1, 64, 64, [&] {
      float* s = reinterpret_cast<float*>(smem);
      if (threadIdx.x == 0) s[0] = 1.f;
      if (barrier) __syncthreads();
      if (threadIdx.x == 40) (void)*reinterpret_cast<volatile float*>(s);
    });
    if (barrier) {
      expect_ok("read after barrier", f);
    } else {
      expect_fault("read before barrier", f, "shared-memory race");
      expect_fault("read before barrier", f, "thread 40 (warp 1, lane 8)");
      expect_fault("read before barrier", f, "written by thread 0 (warp 0, lane 0)");
    }
  }
  // Write over another warp's read.
  expect_fault("write after read", launch("war", 1, 64, 64, [&] {
    float* s = reinterpret_cast<float*>(smem);
    if (threadIdx.x == 0) s[0] = 1.f;
    __syncthreads();
    if (threadIdx.x == 0) (void)*reinterpret_cast<volatile float*>(s);
    if (threadIdx.x == 33) s[0] = 2.f;
  }), "read by thread 0");
  // Lanes of one warp: ordered by __syncwarp or any collective, not otherwise.
  for (int sync = 0; sync < 3; ++sync) {
    const std::string f = launch("warp", 1, 32, 128, [&] {
      int* s = reinterpret_cast<int*>(smem);
      s[threadIdx.x] = 0;
      __syncthreads();
      s[threadIdx.x] = static_cast<int>(threadIdx.x);
      if (sync == 1) __syncwarp();
      if (sync == 2) (void)__shfl_xor_sync(0xffffffffu, 1.f, 1);
      (void)*reinterpret_cast<volatile int*>(s + (threadIdx.x + 1) % 32);
    });
    if (sync == 0) {
      expect_fault("warp without __syncwarp", f, "shared-memory race");
    } else {
      expect_ok("warp with __syncwarp or a shuffle", f);
    }
  }
  // Static __shared__ variables are checked too.
  expect_fault("static shared", launch("static", 1, 64, 0, [&] {
    __shared__ int flag;
    if (threadIdx.x == 0) flag = 1;
    if (threadIdx.x == 63) (void)*reinterpret_cast<volatile int*>(&flag);
  }), "static shared byte");
}

// ---- cp.async -----------------------------------------------------------------------------------

static void copies() {
  std::vector<float> src(64), seen(64);
  for (int i = 0; i < 64; ++i) src[i] = static_cast<float>(i);
  const emu::Buffer buffers[] = {{"src", src.data(), src.size() * sizeof(float), false},
                                 {"seen", seen.data(), seen.size() * sizeof(float), true}};
  const emu::BufferScope scope(buffers, 2);
  // Poisoned until the wait_group that covers it; zero-filled past the source size.
  expect_ok("copy, wait, barrier, read", launch("copy", 1, 16, 256, [&] {
    float* s = reinterpret_cast<float*>(smem);
    const int t = threadIdx.x;
    kron_attn::emu::cp_async(s + 4 * t, src.data() + 4 * t, 16, t < 15 ? 16 : 8);
    kron_attn::emu::cp_async_commit();
    kron_attn::emu::cp_async_wait(0);
    __syncthreads();
    for (int i = 0; i < 4; ++i) seen[4 * t + i] = s[4 * t + i];
  }));
  for (int i = 0; i < 64; ++i) EXPECT(seen[i] == (i < 62 ? float(i) : 0.f), "copied value %d: %g", i, seen[i]);
  // Read before the wait: an unfinished copy (and NaN if it were looked at).
  expect_fault("read before wait", launch("early", 1, 16, 256, [&] {
    float* s = reinterpret_cast<float*>(smem);
    kron_attn::emu::cp_async(s + 4 * threadIdx.x, src.data() + 4 * threadIdx.x, 16, 16);
    kron_attn::emu::cp_async_commit();
    kron_attn::emu::cp_async_commit();
    kron_attn::emu::cp_async_wait(2);  // one group too few
    __syncthreads();
    (void)*reinterpret_cast<volatile float*>(s + 4 * threadIdx.x);
  }), "read of an unfinished cp.async copy");
  expect_fault("exit in flight", launch("leak", 1, 32, 256, [&] {
    float* s = reinterpret_cast<float*>(smem);
    kron_attn::emu::cp_async(s + 4 * threadIdx.x, src.data(), 16, 16);
  }), "exits with 1 cp.async copies in flight");
  expect_fault("misaligned", launch("misaligned", 1, 32, 256, [&] {
    kron_attn::emu::cp_async(smem + 4, src.data(), 16, 16);
  }), "misaligned cp.async");
}

// ---- bounds -------------------------------------------------------------------------------------

static void bounds() {
  expect_fault("past the end", launch("past", 1, 32, 64, [&] {
    (void)*reinterpret_cast<volatile unsigned char*>(smem + 64 + threadIdx.x);
  }), "past the end of the 64 bytes of dynamic shared memory");
  expect_fault("before the start", launch("before", 1, 32, 64, [&] {
    (void)*reinterpret_cast<volatile unsigned char*>(smem - 1 - threadIdx.x);
  }), "before the 64 bytes of dynamic shared memory");
  expect_fault("uninitialized", launch("uninit", 1, 32, 64, [&] {
    (void)*reinterpret_cast<volatile unsigned char*>(smem + threadIdx.x);
  }), "read of uninitialized shared memory");
  std::vector<float> x(100), y(100);
  const emu::Buffer buffers[] = {{"x", x.data(), x.size() * sizeof(float), false},
                                 {"y", y.data(), y.size() * sizeof(float), true}};
  const emu::BufferScope scope(buffers, 2);
  expect_fault("global past the end", launch("global", 1, 128, 0, [&] {
    y[threadIdx.x % 100] = *reinterpret_cast<volatile float*>(x.data() + threadIdx.x);
  }), "4 bytes past the end of 'x' (400 bytes)");
  expect_fault("read-only", launch("readonly", 1, 32, 0, [&] {
    *reinterpret_cast<volatile float*>(x.data() + threadIdx.x) = 1.f;
  }), "write to a read-only buffer");
  const size_t limit = emu::options().shared_limit;
  expect_fault("shared limit", launch("big", 1, 32, limit + 16, [] {}), "over the 101376-byte limit");
}

// ---- barriers and warps -------------------------------------------------------------------------

static void barriers() {
  expect_fault("divergent __syncthreads", launch("divergent", 1, 64, 0, [] {
    if (threadIdx.x < 16) {
      __syncthreads();
    } else {
      __syncthreads();
    }
  }), "divergent __syncthreads");
  expect_ok("barrier after some threads exit", launch("exit", 1, 64, 0, [] {
    if (threadIdx.x >= 32) return;
    __syncthreads();
  }));
  expect_fault("warp divergence", launch("warpdiv", 1, 32, 0, [] {
    if (threadIdx.x < 16) {
      (void)__shfl_xor_sync(0xffffffffu, 1.f, 1);
    } else {
      __syncwarp();
    }
  }), "warp divergence");
  expect_fault("lane exits", launch("lane exit", 1, 32, 0, [] {
    if (threadIdx.x == 5) return;
    (void)__shfl_xor_sync(0xffffffffu, 1.f, 1);
  }), "exit");
  // __shfl_xor_sync: xor within segments of `width`; later segments return the caller's value.
  std::vector<int> got(32), got8(32);
  expect_ok("shuffle", launch("shfl", 1, 32, 0, [&] {
    const int lane = threadIdx.x;
    got[lane] = __shfl_xor_sync(0xffffffffu, lane * 10, 3);
    got8[lane] = __shfl_xor_sync(0xffffffffu, lane * 10, 8, 8);
  }));
  for (int l = 0; l < 32; ++l) {
    EXPECT(got[l] == (l ^ 3) * 10, "shfl_xor lane %d: %d", l, got[l]);
    const int want = (l ^ 8) < l ? (l ^ 8) * 10 : l * 10;
    EXPECT(got8[l] == want, "shfl_xor width 8 lane %d: %d != %d", l, got8[l], want);
  }
  // Grid and block indices.
  std::vector<int> seen(3 * 64, -1);
  expect_ok("indices", launch("indices", 3, 64, 0, [&] {
    seen[blockIdx.x * blockDim.x + threadIdx.x] = static_cast<int>(gridDim.x * 1000 + blockIdx.x);
  }));
  for (int i = 0; i < 3 * 64; ++i) EXPECT(seen[i] == 3000 + i / 64, "index %d: %d", i, seen[i]);
}

// ---- ldmatrix and mma: the PTX fragment tables ------------------------------------------------

static uint16_t bf16_bits(float f) { return __float2bfloat16_rn(f).x; }
static float bf16_value(float f) { return __bfloat162float(__float2bfloat16_rn(f)); }

static void fragments() {
  // A (16 x 16) and B stored n-major (8 x 16, the "col" operand) in shared memory; D = A Bᵀ.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  float A[16][16], B[8][16], C[16][8];
  for (auto& r : A)
    for (float& x : r) x = bf16_value(u(rng));
  for (auto& r : B)
    for (float& x : r) x = bf16_value(u(rng));
  for (auto& r : C)
    for (float& x : r) x = u(rng);
  float D[16][8] = {};
  std::vector<uint16_t> Bt_seen(16 * 8);
  expect_ok("ldmatrix + mma", launch("mma", 1, 32, 1024, [&] {
    uint16_t* sA = reinterpret_cast<uint16_t*>(smem);
    uint16_t* sB = sA + 256;
    const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    for (int i = lane; i < 256; i += 32) sA[i] = bf16_bits(A[i / 16][i % 16]);
    for (int i = lane; i < 128; i += 32) sB[i] = bf16_bits(B[i / 16][i % 16]);
    __syncwarp();
    uint32_t a[4], b[4];
    // A: lanes 0-15 address rows 0-15 at k 0, lanes 16-31 the same rows at k 8.
    kron_attn::emu::ldmatrix_x4(a, sA + (lane % 16) * 16 + (lane / 16) * 8, false);
    // B: matrices (n 0-7, k 0-7) and (n 0-7, k 8-15) in registers 0, 1 (lanes 16-31 repeat).
    kron_attn::emu::ldmatrix_x4(b, sB + (lane % 8) * 16 + ((lane / 8) % 2) * 8, false);
    float d[4] = {C[g][2 * t], C[g][2 * t + 1], C[g + 8][2 * t], C[g + 8][2 * t + 1]};
    kron_attn::emu::mma_m16n8k16(kron_attn::emu::MmaType::kBF16, d, a, b[0], b[1]);
    D[g][2 * t] = d[0];
    D[g][2 * t + 1] = d[1];
    D[g + 8][2 * t] = d[2];
    D[g + 8][2 * t + 1] = d[3];
    // .trans of the 8 x 8 blocks of sB: register 0 of lane l = (rows 2t, 2t+1; column g).
    uint32_t r[4];
    kron_attn::emu::ldmatrix_x4(r, sB + (lane % 8) * 16 + (lane / 8) % 2 * 8, true);
    Bt_seen[lane * 2] = static_cast<uint16_t>(r[0]);
    Bt_seen[lane * 2 + 1] = static_cast<uint16_t>(r[0] >> 16);
  }));
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double want = C[i][j];
      for (int k = 0; k < 16; ++k) want += double(A[i][k]) * B[j][k];
      EXPECT(std::fabs(D[i][j] - want) <= 1e-6 * (1 + std::fabs(want)), "mma D[%d][%d] = %g, want %g", i, j, D[i][j],
             want);
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    EXPECT(Bt_seen[lane * 2] == bf16_bits(B[2 * t][g]) && Bt_seen[lane * 2 + 1] == bf16_bits(B[2 * t + 1][g]),
           "ldmatrix.trans lane %d", lane);
  }
}

int main() {
  races();
  copies();
  bounds();
  barriers();
  fragments();
  std::printf("simt emulator: %d failures\n", failures);
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
