// The SIMT emulator's runtime (see simt.h): CTA scheduling, warp-collectives, cp.async, and the
// shared-memory checks. Not instrumented itself: only the kernel translation units are.
#include "simt.h"

#include <link.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "fiber.h"

#if defined(__x86_64__)
// void kron_attn_emu_switch(void** save_sp, void* load_sp): pushes the callee-saved state on the
// running stack, stores its stack pointer in *save_sp, switches to load_sp and pops the state
// saved there (or the frame make_context built).
asm(R"(
  .text
  .globl kron_attn_emu_switch
  .hidden kron_attn_emu_switch
  .type kron_attn_emu_switch, @function
kron_attn_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size kron_attn_emu_switch, .-kron_attn_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");
#endif

namespace kron_attn::emu {
namespace {

constexpr int kWarpSize = 32;
constexpr int kMaxThreads = 1024;
constexpr int kMaxWorkers = 256;  // OS threads that ever run CTAs (stack address space: 32 GiB)
constexpr int kMaxParallel = 64;  // OS threads one launch uses at most
constexpr size_t kStackBytes = size_t(128) << 10;  // per fiber; its lowest page is a guard
constexpr size_t kPage = 4096;
constexpr size_t kNearBytes = size_t(1) << 20;  // global accesses this close to a buffer are checked
constexpr uint16_t kNobody = 0xffff;

enum class State : uint8_t { kRunnable, kBarrier, kCollective, kDone };
enum class Op : uint8_t { kNone, kSyncwarp, kShfl, kLdmatrix, kMma };
enum class Access : uint8_t { kRead, kWrite, kCopyIssue };

const char* op_name(Op op) {
  switch (op) {
    case Op::kSyncwarp: return "__syncwarp";
    case Op::kShfl: return "__shfl_xor_sync";
    case Op::kLdmatrix: return "ldmatrix";
    case Op::kMma: return "mma";
    default: return "nothing";
  }
}

struct Copy {
  unsigned char* dst;
  const unsigned char* src;
  uint32_t bytes, src_bytes, group;
};

struct Cta;
struct Warp;

struct Thread {
  Context ctx;
  Cta* cta = nullptr;
  Warp* warp = nullptr;
  Dim3 idx;
  int tid = 0, lane = 0;
  State state = State::kDone;
  std::vector<Copy> copies;  // in flight, in issue order
  uint32_t committed = 0;    // groups committed; the open group's id
  uint64_t in[8] = {};       // collective operands
  uint64_t out[4] = {};      // collective results
  uintptr_t stack_lo = 0;
};

struct Warp {
  Op op = Op::kNone;
  unsigned mask = 0;
  uint32_t arrived = 0, exists = 0, live = 0;
  uint32_t sync = 0;  // completed collectives: orders the accesses of its lanes
  MmaType type = MmaType::kBF16;
  int first_lane_tid = 0;
};

// Shadow state of one shared-memory byte. Epochs count barriers over the worker's life, so a
// value below the CTA's first epoch is a byte no thread of this CTA has written.
struct Cell {
  uint32_t w_epoch;  // of the last write (of the issue while a copy is pending)
  uint32_t r_epoch;  // of the reads recorded below
  uint32_t w_sync;   // writer's warp sync count at the write
  uint32_t r_sync;   // latest reader's warp sync count
  uint16_t w_tid;    // last writer (issuer of a pending copy)
  uint16_t r_tid;    // first reader in r_epoch
  uint16_t r_other;  // another reader in r_epoch, or kNobody
  uint16_t r_xwarp;  // a reader in r_epoch from another warp than r_tid's, or kNobody
  uint8_t pending;   // a cp.async to this byte is in flight
};

struct Worker;

struct Cta {
  Worker* worker = nullptr;
  const Launch* launch = nullptr;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  const Buffer* buffers = nullptr;
  int buffer_count = 0;
  Dim3 idx;
  int threads = 0, live = 0, at_barrier = 0;
  const char* bar_file = nullptr;  // the __syncthreads the waiting threads reached
  int bar_line = 0, bar_tid = 0;
  const char* last_bar_file = nullptr;  // the last completed one, for messages
  int last_bar_line = 0;
  uint32_t epoch = 0, first_epoch = 0;
  std::string fault;
};

struct Worker {
  int slot = 0;
  Context sched;
  std::vector<Thread> threads;  // fiber i runs on stack slot (slot * kMaxThreads + i)
  size_t committed_stacks = 0;
  Warp warps[kMaxThreads / kWarpSize];
  Cta cta;
  // This OS thread's shared memory: the dynamic array with its guards, and the module's whole
  // thread-local block (static __shared__ variables live there too).
  uintptr_t guard_lo = 0, array = 0, guard_hi_end = 0, window_lo = 0, window_hi = 0;
  uintptr_t shadow_lo = 0;
  std::vector<Cell> shadow;
  bool shadow_dirty = false;
  uint32_t epochs = 0;
};

SharedStorage g_storage{};
bool g_has_storage = false;
uintptr_t g_stacks = 0;  // base of the reserved stack region (0 until the first launch)
size_t g_stack_region = 0;
Worker* g_workers[kMaxWorkers] = {};
std::atomic<int> g_next_worker{0};
std::once_flag g_reserve_once;

thread_local Worker* tl_worker = nullptr;
thread_local const Buffer* tl_buffers = nullptr;
thread_local int tl_buffer_count = 0;

// ---- who is running ---------------------------------------------------------------------------

// The CUDA thread whose fiber stack we are on, or nullptr on any other stack.
inline Thread* self() {
  const uintptr_t off = reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) - g_stacks;
  if (off >= g_stack_region) return nullptr;
  const size_t slot = off / kStackBytes;
  return &g_workers[slot / kMaxThreads]->threads[slot % kMaxThreads];
}

Thread* current(const char* what) {
  Thread* t = self();
  if (t == nullptr) {
    std::fprintf(stderr, "kron_attn cuda_emu: %s called outside an emulated kernel\n", what);
    std::abort();
  }
  return t;
}

// ---- messages ---------------------------------------------------------------------------------

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

std::string who(const Cta& c, int tid) {
  const Dim3& b = c.launch->block;
  std::string s = format("thread %d (warp %d, lane %d", tid, tid / kWarpSize, tid % kWarpSize);
  const unsigned u = static_cast<unsigned>(tid);
  if (b.y > 1 || b.z > 1) s += format(", threadIdx (%u, %u, %u)", u % b.x, u / b.x % b.y, u / (b.x * b.y));
  return s + ")";
}

// A thread and, if given, the instruction it executes ("(ldmatrix)").
std::string actor(const Cta& c, int tid, const char* how) {
  return how[0] ? who(c, tid) + " " + how : who(c, tid);
}

std::string where(const Cta& c) {
  std::string s = format("%s, block (%u, %u, %u)", c.launch->kernel, c.idx.x, c.idx.y, c.idx.z);
  return s;
}

const char* base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

std::string since(const Cta& c) {
  if (c.last_bar_file == nullptr) return "since the kernel started";
  return format("since the __syncthreads at %s:%d", base_name(c.last_bar_file), c.last_bar_line);
}

std::string shared_place(const Worker& w, uintptr_t a) {
  if (a >= w.array && a < w.guard_hi_end) return format("dynamic shared offset %zu", size_t(a - w.array));
  if (a >= w.guard_lo && a < w.array) return format("%zu bytes before dynamic shared memory", size_t(w.array - a));
  return format("static shared byte %zu", size_t(a - w.window_lo));
}

// Ends this thread's part in the launch: records the fault (the CTA's first) and never returns.
[[noreturn]] void fault(Thread* t, std::string what) {
  Cta& c = *t->cta;
  if (c.fault.empty()) c.fault = "cuda_emu: " + what + " in " + where(c);
  t->state = State::kDone;
  switch_context(&t->ctx, &c.worker->sched);
  __builtin_unreachable();
}

// ---- shared-memory checks -----------------------------------------------------------------------

bool ordered_in_warp(const Thread* t, int other_tid, uint32_t other_sync) {
  return other_tid / kWarpSize == t->tid / kWarpSize && t->warp->sync > other_sync;
}

void check_cell(Thread* t, Cell& cell, uintptr_t a, Access kind, const char* how) {
  Cta& c = *t->cta;
  const Worker& w = *c.worker;
  const char* verb = kind == Access::kRead ? "reads" : "writes";
  if (cell.pending) {
    fault(t, format("%s an unfinished cp.async copy: %s %s %s, whose cp.async by %s has not completed (no "
                    "cp.async.wait_group covers its group yet)",
                    kind == Access::kRead ? "read of" : "write over", actor(c, t->tid, how).c_str(), verb,
                    shared_place(w, a).c_str(), who(c, cell.w_tid).c_str()));
  }
  const bool written_now = cell.w_epoch == c.epoch && cell.w_tid != t->tid && !ordered_in_warp(t, cell.w_tid, cell.w_sync);
  if (kind == Access::kRead) {
    if (cell.w_epoch < c.first_epoch) {
      fault(t, format("read of uninitialized shared memory: %s reads %s, which no thread has written",
                      actor(c, t->tid, how).c_str(), shared_place(w, a).c_str()));
    }
    if (written_now) {
      fault(t, format("shared-memory race: %s reads %s, written by %s with no barrier between them (%s)",
                      actor(c, t->tid, how).c_str(), shared_place(w, a).c_str(), who(c, cell.w_tid).c_str(),
                      since(c).c_str()));
    }
    if (cell.r_epoch != c.epoch) {
      cell.r_epoch = c.epoch;
      cell.r_tid = static_cast<uint16_t>(t->tid);
      cell.r_other = cell.r_xwarp = kNobody;
    } else if (cell.r_tid != t->tid) {
      cell.r_other = static_cast<uint16_t>(t->tid);
      if (cell.r_tid / kWarpSize != t->tid / kWarpSize) cell.r_xwarp = static_cast<uint16_t>(t->tid);
    }
    cell.r_sync = t->warp->sync;
    return;
  }
  if (written_now) {
    fault(t, format("shared-memory race: %s writes %s, also written by %s with no barrier between them (%s)",
                    actor(c, t->tid, how).c_str(), shared_place(w, a).c_str(), who(c, cell.w_tid).c_str(),
                    since(c).c_str()));
  }
  if (cell.r_epoch == c.epoch) {
    // A reader in another warp races; readers in this warp only if no collective came between.
    const int mine = t->tid / kWarpSize;
    int other = cell.r_tid / kWarpSize != mine ? cell.r_tid
                : cell.r_xwarp != kNobody  ? cell.r_xwarp
                : cell.r_tid != t->tid     ? cell.r_tid
                                           : cell.r_other;
    if (other != kNobody && !ordered_in_warp(t, other, cell.r_sync)) {
      fault(t, format("shared-memory race: %s writes %s, read by %s with no barrier between them (%s)",
                      actor(c, t->tid, how).c_str(), shared_place(w, a).c_str(), who(c, other).c_str(),
                      since(c).c_str()));
    }
  }
  cell.w_tid = static_cast<uint16_t>(t->tid);
  cell.w_epoch = c.epoch;
  cell.w_sync = t->warp->sync;
  cell.pending = kind == Access::kCopyIssue;
}

bool in_shared(const Worker& w, uintptr_t a) {
  return (a >= w.guard_lo && a < w.guard_hi_end) || (a >= w.window_lo && a < w.window_hi);
}

void shared_access(Thread* t, uintptr_t a, size_t n, Access kind, const char* how) {
  Worker& w = *t->cta->worker;
  if (a + n > w.guard_lo && a < w.guard_hi_end) {
    const size_t asked = t->cta->launch->dynamic_shared;
    if (a < w.array || a + n > w.array + asked) {
      const bool before = a < w.array;
      fault(t, format("out-of-bounds shared access: %s %s %zu bytes at %s, %s the %zu bytes of dynamic shared "
                      "memory the launch asked for",
                      actor(*t->cta, t->tid, how).c_str(), kind == Access::kRead ? "reads" : "writes", n,
                      shared_place(w, a).c_str(), before ? "before" : "past the end of", asked));
    }
  }
  Cell* cell = &w.shadow[a - w.shadow_lo];
  for (size_t i = 0; i < n; ++i) check_cell(t, cell[i], a + i, kind, how);
}

void global_access(Thread* t, uintptr_t a, size_t n, bool write, const char* how) {
  const Cta& c = *t->cta;
  for (int i = 0; i < c.buffer_count; ++i) {
    const Buffer& b = c.buffers[i];
    const uintptr_t lo = reinterpret_cast<uintptr_t>(b.base), hi = lo + b.bytes;
    if (a >= lo && a + n <= hi) {
      if (write && !b.writable) {
        fault(t, format("write to a read-only buffer: %s writes %zu bytes at byte %zu of '%s'",
                        actor(c, t->tid, how).c_str(), n, size_t(a - lo), b.name));
      }
      return;
    }
  }
  for (int i = 0; i < c.buffer_count; ++i) {
    const Buffer& b = c.buffers[i];
    const uintptr_t lo = reinterpret_cast<uintptr_t>(b.base), hi = lo + b.bytes;
    if (a + n + kNearBytes > lo && a < hi + kNearBytes) {
      const std::string rel = a < lo ? format("%zu bytes before the start", size_t(lo - a))
                                     : format("%zu bytes past the end", size_t(a + n - hi));
      fault(t, format("out-of-bounds global access: %s %s %zu bytes %s of '%s' (%zu bytes)",
                      actor(c, t->tid, how).c_str(), write ? "writes" : "reads", n, rel.c_str(), b.name, b.bytes));
    }
  }
  // Anything else (constants, host statics) is not the launch's business.
}

// A plain load or store of kernel code, seen through the compiler's instrumentation.
inline void on_access(const void* p, size_t n, bool write) {
  Thread* t = self();
  if (t == nullptr) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a - t->stack_lo < kStackBytes) return;  // the thread's own locals
  const Worker& w = *t->cta->worker;
  if (in_shared(w, a)) {
    shared_access(t, a, n, write ? Access::kWrite : Access::kRead, "");
  } else {
    global_access(t, a, n, write, "");
  }
}

// ---- scheduling -------------------------------------------------------------------------------

void yield(Thread* t) { switch_context(&t->ctx, &t->cta->worker->sched); }

void release_barrier(Cta& c) {
  for (int i = 0; i < c.threads; ++i) {
    Thread& t = c.worker->threads[i];
    if (t.state == State::kBarrier) t.state = State::kRunnable;
  }
  c.at_barrier = 0;
  c.last_bar_file = c.bar_file;
  c.last_bar_line = c.bar_line;
  c.epoch = ++c.worker->epochs;
}

void finish(Thread* t) {
  Cta& c = *t->cta;
  if (!t->copies.empty()) {
    fault(t, format("%s exits with %zu cp.async copies in flight (a cp.async.wait_group 0 must come first)",
                    who(c, t->tid).c_str(), t->copies.size()));
  }
  Warp& w = *t->warp;
  w.live &= ~(1u << t->lane);
  if (w.op != Op::kNone && (w.mask >> t->lane & 1u)) {
    fault(t, format("%s exits while lanes of its warp wait for it at %s", who(c, t->tid).c_str(), op_name(w.op)));
  }
  t->state = State::kDone;
  --c.live;
  if (c.at_barrier > 0 && c.at_barrier == c.live) release_barrier(c);
}

void fiber_entry() {
  Thread* t = self();
  Cta& c = *t->cta;
  c.body(c.arg);
  finish(t);
  switch_context(&t->ctx, &c.worker->sched);
  __builtin_unreachable();
}

std::string deadlock(const Cta& c) {
  std::string s = "cuda_emu: deadlock in " + where(c) + ":";
  int shown = 0;
  for (int i = 0; i < c.threads && shown < 8; ++i) {
    const Thread& t = c.worker->threads[i];
    if (t.state == State::kBarrier) {
      s += format(" %s waits at __syncthreads (%s:%d);", who(c, t.tid).c_str(), base_name(c.bar_file), c.bar_line);
      ++shown;
    } else if (t.state == State::kCollective) {
      s += format(" %s waits at %s for lanes %08x;", who(c, t.tid).c_str(), op_name(t.warp->op),
                  t.warp->mask & ~t.warp->arrived);
      ++shown;
    }
  }
  return s + format(" %d of %d threads have exited", c.threads - c.live, c.threads);
}

// ---- the worker of an OS thread -----------------------------------------------------------------

struct TlsBlock {
  uintptr_t code;
  uintptr_t lo = 0, hi = 0;
};

// The calling OS thread's thread-local block of the module holding `code`.
int find_tls_block(dl_phdr_info* info, size_t, void* data) {
  TlsBlock* want = static_cast<TlsBlock*>(data);
  bool mine = false;
  size_t tls_bytes = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && want->code >= lo && want->code < lo + ph.p_memsz) mine = true;
    if (ph.p_type == PT_TLS) tls_bytes = ph.p_memsz;
  }
  if (!mine || info->dlpi_tls_data == nullptr) return 0;
  want->lo = reinterpret_cast<uintptr_t>(info->dlpi_tls_data);
  want->hi = want->lo + tls_bytes;
  return 1;
}

void reserve_stacks() {
  g_stack_region = kStackBytes * kMaxThreads * kMaxWorkers;  // address space only
  void* p = mmap(nullptr, g_stack_region, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("kron_attn cuda_emu: reserving fiber stacks");
    std::abort();
  }
  g_stacks = reinterpret_cast<uintptr_t>(p);
}

// This OS thread's worker, or nullptr when every slot is taken.
Worker* worker() {
  if (tl_worker != nullptr) return tl_worker;
  std::call_once(g_reserve_once, reserve_stacks);
  const int slot = g_next_worker.fetch_add(1);
  if (slot >= kMaxWorkers) return nullptr;
  Worker* w = new Worker;  // lives as long as the process: fiber stacks point into it
  w->slot = slot;
  w->threads.resize(kMaxThreads);
  if (g_has_storage) {
    w->guard_lo = reinterpret_cast<uintptr_t>(g_storage.below());
    w->array = reinterpret_cast<uintptr_t>(g_storage.array());
    w->guard_hi_end = reinterpret_cast<uintptr_t>(g_storage.above()) + g_storage.guard_bytes;
    if (w->array != w->guard_lo + g_storage.guard_bytes ||
        w->guard_hi_end != w->array + g_storage.array_bytes + g_storage.guard_bytes) {
      std::fprintf(stderr, "kron_attn cuda_emu: the shared-memory guards are not adjacent to the array "
                           "(build the kernel translation units with -fno-toplevel-reorder)\n");
      std::abort();
    }
    TlsBlock block{reinterpret_cast<uintptr_t>(g_storage.array)};
    dl_iterate_phdr(find_tls_block, &block);
    w->window_lo = block.lo ? block.lo : w->guard_lo;
    w->window_hi = block.hi ? block.hi : w->guard_hi_end;
    w->shadow_lo = std::min(w->window_lo, w->guard_lo);
    w->shadow.assign(std::max(w->window_hi, w->guard_hi_end) - w->shadow_lo, Cell{});
  }
  g_workers[slot] = w;
  tl_worker = w;
  return w;
}

// Makes sure fibers [0, n) of w have committed stacks.
void commit_stacks(Worker& w, size_t n) {
  for (size_t i = w.committed_stacks; i < n; ++i) {
    const uintptr_t lo = g_stacks + (w.slot * size_t(kMaxThreads) + i) * kStackBytes;
    if (mprotect(reinterpret_cast<void*>(lo + kPage), kStackBytes - kPage, PROT_READ | PROT_WRITE) != 0) {
      std::perror("kron_attn cuda_emu: committing a fiber stack");
      std::abort();
    }
    w.threads[i].stack_lo = lo;
  }
  w.committed_stacks = std::max(w.committed_stacks, n);
}

uint64_t next_random(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

std::string run_cta(Worker& w, const Launch& l, void (*body)(void*), void* arg, const Buffer* buffers,
                    int buffer_count, uint64_t linear) {
  const int n = static_cast<int>(l.block.x * l.block.y * l.block.z);
  commit_stacks(w, n);
  if (w.shadow_dirty) {
    std::fill(w.shadow.begin(), w.shadow.end(), Cell{});
    w.shadow_dirty = false;
  }
  Cta& c = w.cta;
  c = Cta{};
  c.worker = &w;
  c.launch = &l;
  c.body = body;
  c.arg = arg;
  c.buffers = buffers;
  c.buffer_count = buffer_count;
  c.idx = {unsigned(linear % l.grid.x), unsigned(linear / l.grid.x % l.grid.y),
           unsigned(linear / (uint64_t(l.grid.x) * l.grid.y))};
  c.threads = c.live = n;
  c.first_epoch = c.epoch = ++w.epochs;
  if (l.dynamic_shared > 0) std::memset(reinterpret_cast<void*>(w.array), 0xFF, l.dynamic_shared);

  const int warps = (n + kWarpSize - 1) / kWarpSize;
  for (int i = 0; i < warps; ++i) {
    const int lanes = std::min(kWarpSize, n - i * kWarpSize);
    w.warps[i] = Warp{};
    w.warps[i].exists = w.warps[i].live = lanes == kWarpSize ? 0xffffffffu : (1u << lanes) - 1;
    w.warps[i].first_lane_tid = i * kWarpSize;
  }
  for (int i = 0; i < n; ++i) {
    Thread& t = w.threads[i];
    t.cta = &c;
    t.warp = &w.warps[i / kWarpSize];
    t.tid = i;
    t.lane = i % kWarpSize;
    t.idx = {unsigned(i % l.block.x), unsigned(i / l.block.x % l.block.y), unsigned(i / (l.block.x * l.block.y))};
    t.state = State::kRunnable;
    t.copies.clear();
    t.committed = 0;
    make_context(&t.ctx, reinterpret_cast<void*>(t.stack_lo + kPage), kStackBytes - kPage, fiber_entry);
  }

  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  uint64_t rng = options().schedule_seed * 0x9E3779B97F4A7C15ull + linear + 1;
  while (c.live > 0) {
    if (options().schedule_seed != 0) {
      for (int i = n - 1; i > 0; --i) std::swap(order[i], order[next_random(rng) % (i + 1)]);
    }
    bool ran = false;
    for (int i : order) {
      Thread& t = w.threads[i];
      if (t.state != State::kRunnable) continue;
      ran = true;
      switch_context(&w.sched, &t.ctx);
      if (!c.fault.empty()) {
        w.shadow_dirty = true;
        return c.fault;
      }
    }
    if (!ran) {
      w.shadow_dirty = true;
      return deadlock(c);
    }
  }
  return "";
}

// ---- collectives --------------------------------------------------------------------------------

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
  float f;
  if (exp == 0x1f) {
    const uint32_t bits = sign | 0x7f800000u | (mant << 13);
    std::memcpy(&f, &bits, 4);
  } else if (exp == 0) {
    f = std::ldexp(float(mant), -24);
    if (sign) f = -f;
  } else {
    const uint32_t bits = sign | ((exp + 112) << 23) | (mant << 13);
    std::memcpy(&f, &bits, 4);
  }
  return f;
}

double element(MmaType type, uint32_t reg, int half) {
  const uint16_t bits = static_cast<uint16_t>(reg >> (16 * half));
  if (type == MmaType::kF16) return half_to_float(bits);
  const uint32_t u = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t read_u32(uintptr_t a) {
  uint32_t v;
  std::memcpy(&v, reinterpret_cast<const void*>(a), 4);
  return v;
}

uint16_t read_u16(uintptr_t a) {
  uint16_t v;
  std::memcpy(&v, reinterpret_cast<const void*>(a), 2);
  return v;
}

void complete(Cta& c, Warp& w) {
  Thread* lanes = &c.worker->threads[w.first_lane_tid];
  switch (w.op) {
    case Op::kSyncwarp:
      break;
    case Op::kShfl:
      for (int l = 0; l < kWarpSize; ++l) {
        if (!(w.mask >> l & 1u)) continue;
        const int width = static_cast<int>(lanes[l].in[2]);
        const int src = l ^ static_cast<int>(lanes[l].in[1]);
        const bool in_segment = src / width == l / width || src < l;  // later segments: own value
        const int from = in_segment && src < kWarpSize ? src : l;
        if (!(w.mask >> from & 1u)) {
          fault(&lanes[l], format("%s reads lane %d in __shfl_xor_sync, which is not in the mask %08x",
                                  who(c, lanes[l].tid).c_str(), from, w.mask));
        }
        lanes[l].out[0] = lanes[from].in[0];
      }
      break;
    case Op::kLdmatrix: {
      const bool trans = lanes[0].in[1] != 0;
      for (int l = 0; l < kWarpSize; ++l) {
        const uintptr_t a = lanes[l].in[0];
        if (a % 16 != 0 || !in_shared(*c.worker, a)) {
          fault(&lanes[l], format("ldmatrix row address of %s is %s", who(c, lanes[l].tid).c_str(),
                                  a % 16 ? "not 16-byte aligned" : "not in shared memory"));
        }
        shared_access(&lanes[l], a, 16, Access::kRead, "(ldmatrix)");
      }
      for (int l = 0; l < kWarpSize; ++l) {
        const int g = l / 4, t = l % 4;
        for (int i = 0; i < 4; ++i) {
          uint32_t r;
          if (!trans) {
            r = read_u32(lanes[8 * i + g].in[0] + 4 * t);
          } else {
            r = uint32_t(read_u16(lanes[8 * i + 2 * t].in[0] + 2 * g)) |
                uint32_t(read_u16(lanes[8 * i + 2 * t + 1].in[0] + 2 * g)) << 16;
          }
          lanes[l].out[i] = r;
        }
      }
      break;
    }
    case Op::kMma: {
      double A[16][16], B[16][8], C[16][8];
      for (int l = 0; l < kWarpSize; ++l) {
        const int g = l / 4, t = l % 4;
        const uint64_t* in = lanes[l].in;
        for (int e = 0; e < 2; ++e) {
          A[g][2 * t + e] = element(w.type, uint32_t(in[0]), e);
          A[g + 8][2 * t + e] = element(w.type, uint32_t(in[1]), e);
          A[g][2 * t + 8 + e] = element(w.type, uint32_t(in[2]), e);
          A[g + 8][2 * t + 8 + e] = element(w.type, uint32_t(in[3]), e);
          B[2 * t + e][g] = element(w.type, uint32_t(in[4]), e);
          B[2 * t + 8 + e][g] = element(w.type, uint32_t(in[5]), e);
        }
        float acc[4];
        std::memcpy(acc, &in[6], sizeof(acc));
        C[g][2 * t] = acc[0];
        C[g][2 * t + 1] = acc[1];
        C[g + 8][2 * t] = acc[2];
        C[g + 8][2 * t + 1] = acc[3];
      }
      for (int l = 0; l < kWarpSize; ++l) {
        const int g = l / 4, t = l % 4;
        float d[4];
        const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
        for (int e = 0; e < 4; ++e) {
          double s = C[rows[e]][cols[e]];
          for (int k = 0; k < 16; ++k) s += A[rows[e]][k] * B[k][cols[e]];
          d[e] = static_cast<float>(s);
        }
        std::memcpy(lanes[l].out, d, sizeof(d));
      }
      break;
    }
    case Op::kNone:
      break;
  }
}

// One lane's arrival at a warp-collective; returns once every lane of the mask has arrived and
// the collective is done (the results are in t->out).
void arrive(Thread* t, Op op, unsigned mask) {
  Cta& c = *t->cta;
  Warp& w = *t->warp;
  if (!(mask >> t->lane & 1u)) {
    fault(t, format("%s calls %s with mask %08x, which leaves it out", who(c, t->tid).c_str(), op_name(op), mask));
  }
  if (w.op == Op::kNone) {
    if (mask & ~w.exists) {
      fault(t, format("%s calls %s with mask %08x, naming lanes that do not exist", who(c, t->tid).c_str(),
                      op_name(op), mask));
    }
    if (mask & ~w.live) {
      fault(t, format("%s calls %s with mask %08x, but lanes %08x have exited", who(c, t->tid).c_str(), op_name(op),
                      mask, mask & ~w.live));
    }
    w.op = op;
    w.mask = mask;
    w.arrived = 0;
  } else if (w.op != op || w.mask != mask) {
    fault(t, format("warp divergence: %s reaches %s (mask %08x) while lanes %08x of its warp wait at %s (mask %08x)",
                    who(c, t->tid).c_str(), op_name(op), mask, w.arrived, op_name(w.op), w.mask));
  }
  w.arrived |= 1u << t->lane;
  if (w.arrived != w.mask) {
    t->state = State::kCollective;
    yield(t);
    return;
  }
  complete(c, w);
  for (int l = 0; l < kWarpSize; ++l) {
    Thread& lane = c.worker->threads[w.first_lane_tid + l];
    if ((w.mask >> l & 1u) && lane.state == State::kCollective) lane.state = State::kRunnable;
  }
  w.op = Op::kNone;
  ++w.sync;
}

}  // namespace

// ---- device side --------------------------------------------------------------------------------

Dim3 thread_idx() { return current("threadIdx")->idx; }
Dim3 block_idx() { return current("blockIdx")->cta->idx; }
Dim3 block_dim() { return current("blockDim")->cta->launch->block; }
Dim3 grid_dim() { return current("gridDim")->cta->launch->grid; }

void syncthreads(const char* file, int line) {
  Thread* t = current("__syncthreads");
  Cta& c = *t->cta;
  if (c.at_barrier == 0) {
    c.bar_file = file;
    c.bar_line = line;
    c.bar_tid = t->tid;
  } else if (c.bar_line != line || std::strcmp(c.bar_file, file) != 0) {
    fault(t, format("divergent __syncthreads: %s waits at %s:%d while %s waits at %s:%d", who(c, t->tid).c_str(),
                    base_name(file), line, who(c, c.bar_tid).c_str(), base_name(c.bar_file), c.bar_line));
  }
  if (t->warp->op != Op::kNone) {
    fault(t, format("%s reaches __syncthreads at %s:%d while lanes of its warp wait at %s", who(c, t->tid).c_str(),
                    base_name(file), line, op_name(t->warp->op)));
  }
  ++c.at_barrier;
  if (c.at_barrier == c.live) {
    release_barrier(c);
    return;
  }
  t->state = State::kBarrier;
  yield(t);
}

void syncwarp(const char*, int, unsigned mask) { arrive(current("__syncwarp"), Op::kSyncwarp, mask); }

uint64_t shfl_xor_bits(unsigned mask, uint64_t bits, int lane_mask, int width) {
  Thread* t = current("__shfl_xor_sync");
  if (width < 1 || width > kWarpSize || (width & (width - 1)) != 0) {
    fault(t, format("__shfl_xor_sync width %d is not a power of 2 in [1, 32]", width));
  }
  t->in[0] = bits;
  t->in[1] = static_cast<uint64_t>(lane_mask & (kWarpSize - 1));
  t->in[2] = static_cast<uint64_t>(width);
  arrive(t, Op::kShfl, mask);
  return t->out[0];
}

void ldmatrix_x4(uint32_t (&r)[4], const void* row, bool trans) {
  Thread* t = current("ldmatrix");
  t->in[0] = reinterpret_cast<uintptr_t>(row);
  t->in[1] = trans;
  arrive(t, Op::kLdmatrix, 0xffffffffu);
  for (int i = 0; i < 4; ++i) r[i] = static_cast<uint32_t>(t->out[i]);
}

void mma_m16n8k16(MmaType type, float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  Thread* t = current("mma");
  for (int i = 0; i < 4; ++i) t->in[i] = a[i];
  t->in[4] = b0;
  t->in[5] = b1;
  std::memcpy(&t->in[6], d, sizeof(d));
  if (t->warp->op == Op::kNone) {
    t->warp->type = type;
  } else if (t->warp->op == Op::kMma && t->warp->type != type) {
    fault(t, format("warp divergence: %s issues mma on other element types than its warp", who(*t->cta, t->tid).c_str()));
  }
  arrive(t, Op::kMma, 0xffffffffu);
  std::memcpy(d, t->out, sizeof(d));
}

void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes) {
  Thread* t = current("cp.async");
  const Cta& c = *t->cta;
  const uintptr_t d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  if ((bytes != 4 && bytes != 8 && bytes != 16) || src_bytes > bytes) {
    fault(t, format("cp.async of %u bytes with source size %u by %s", bytes, src_bytes, who(c, t->tid).c_str()));
  }
  if (d % bytes != 0 || (src_bytes > 0 && s % bytes != 0)) {
    fault(t, format("misaligned cp.async of %u bytes by %s (destination %% %u = %zu, source %% %u = %zu)", bytes,
                    who(c, t->tid).c_str(), bytes, size_t(d % bytes), bytes, size_t(s % bytes)));
  }
  if (!in_shared(*c.worker, d)) fault(t, format("cp.async destination of %s is not shared memory", who(c, t->tid).c_str()));
  if (src_bytes > 0) global_access(t, s, src_bytes, false, "(cp.async source)");
  shared_access(t, d, bytes, Access::kCopyIssue, "(cp.async)");
  std::memset(dst, 0xFF, bytes);  // NaN in every float format until the copy lands
  t->copies.push_back({static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), bytes, src_bytes,
                       t->committed});
}

void cp_async_commit() { ++current("cp.async.commit_group")->committed; }

void cp_async_wait(int n) {
  Thread* t = current("cp.async.wait_group");
  Worker& w = *t->cta->worker;
  const uint32_t keep_from = t->committed > uint32_t(n) ? t->committed - n : 0;
  size_t landed = 0;
  for (const Copy& cp : t->copies) {
    if (cp.group >= keep_from) break;
    std::memcpy(cp.dst, cp.src, cp.src_bytes);
    std::memset(cp.dst + cp.src_bytes, 0, cp.bytes - cp.src_bytes);
    Cell* cell = &w.shadow[reinterpret_cast<uintptr_t>(cp.dst) - w.shadow_lo];
    for (uint32_t i = 0; i < cp.bytes; ++i) {
      cell[i].pending = 0;
      cell[i].w_epoch = t->cta->epoch;
      cell[i].w_tid = static_cast<uint16_t>(t->tid);
      cell[i].w_sync = t->warp->sync;
    }
    ++landed;
  }
  t->copies.erase(t->copies.begin(), t->copies.begin() + landed);
}

// ---- host side ----------------------------------------------------------------------------------

BufferScope::BufferScope(const Buffer* buffers, int count) : saved_(tl_buffers), saved_count_(tl_buffer_count) {
  tl_buffers = buffers;
  tl_buffer_count = count;
}

BufferScope::~BufferScope() {
  tl_buffers = saved_;
  tl_buffer_count = saved_count_;
}

bool register_shared_storage(const SharedStorage& storage) {
  g_storage = storage;
  g_has_storage = true;
  return true;
}

Options& options() {
  static Options o;
  return o;
}

std::string run(const Launch& l, void (*body)(void*), void* arg) {
  const uint64_t threads = uint64_t(l.block.x) * l.block.y * l.block.z;
  const uint64_t blocks = uint64_t(l.grid.x) * l.grid.y * l.grid.z;
  if (threads == 0 || threads > kMaxThreads) {
    return format("cuda_emu: %s launched with %llu threads per block (1 to %d)", l.kernel, (unsigned long long)threads,
                  kMaxThreads);
  }
  if (l.dynamic_shared > options().shared_limit) {
    return format("cuda_emu: %s asks for %zu bytes of dynamic shared memory per block, over the %zu-byte limit "
                  "(the smallest of the GPUs the kernels target: sm_86, sm_89, sm_120)",
                  l.kernel, l.dynamic_shared, options().shared_limit);
  }
  if (l.dynamic_shared > 0 && (!g_has_storage || l.dynamic_shared > g_storage.array_bytes)) {
    return format("cuda_emu: %s asks for dynamic shared memory the module does not provide", l.kernel);
  }
  const Buffer* buffers = tl_buffers;
  const int buffer_count = tl_buffer_count;
  std::atomic<bool> stop{false};
  std::mutex mu;
  uint64_t first_block = blocks;
  std::string first;
  const int parallel = std::min(omp_get_max_threads(), kMaxParallel);
#pragma omp parallel for schedule(dynamic, 1) num_threads(parallel) if (blocks > 1)
  for (int64_t b = 0; b < static_cast<int64_t>(blocks); ++b) {
    if (stop.load(std::memory_order_relaxed)) continue;
    Worker* w = worker();
    std::string f = w ? run_cta(*w, l, body, arg, buffers, buffer_count, static_cast<uint64_t>(b))
                      : format("cuda_emu: more than %d OS threads have run emulated kernels in this process", kMaxWorkers);
    if (!f.empty()) {
      std::lock_guard<std::mutex> lock(mu);
      if (uint64_t(b) < first_block) {
        first_block = b;
        first = std::move(f);
      }
      stop = true;
    }
  }
  return first;
}

}  // namespace kron_attn::emu

// ---- the compiler's instrumentation entry points ----------------------------------------------------
// -fsanitize=thread makes the kernel translation units call these around every memory access
// they keep after optimisation. They are hidden: no sanitizer runtime is linked or interposed.

#define KA_EMU_HOOK extern "C" __attribute__((visibility("hidden")))
#define KA_EMU_ACCESS(N)                                                                                \
  KA_EMU_HOOK void __tsan_read##N(void* p) { kron_attn::emu::on_access(p, N, false); }                \
  KA_EMU_HOOK void __tsan_write##N(void* p) { kron_attn::emu::on_access(p, N, true); }                \
  KA_EMU_HOOK void __tsan_unaligned_read##N(void* p) { kron_attn::emu::on_access(p, N, false); }      \
  KA_EMU_HOOK void __tsan_unaligned_write##N(void* p) { kron_attn::emu::on_access(p, N, true); }      \
  KA_EMU_HOOK void __tsan_volatile_read##N(void* p) { kron_attn::emu::on_access(p, N, false); }       \
  KA_EMU_HOOK void __tsan_volatile_write##N(void* p) { kron_attn::emu::on_access(p, N, true); }
KA_EMU_ACCESS(1)
KA_EMU_ACCESS(2)
KA_EMU_ACCESS(4)
KA_EMU_ACCESS(8)
KA_EMU_ACCESS(16)
KA_EMU_HOOK void __tsan_read_range(void* p, size_t n) { kron_attn::emu::on_access(p, n, false); }
KA_EMU_HOOK void __tsan_write_range(void* p, size_t n) { kron_attn::emu::on_access(p, n, true); }
KA_EMU_HOOK void __tsan_init() {}
KA_EMU_HOOK void __tsan_func_entry(void*) {}
KA_EMU_HOOK void __tsan_func_exit() {}
KA_EMU_HOOK void __tsan_vptr_update(void**, void*) {}
KA_EMU_HOOK void __tsan_vptr_read(void**) {}
