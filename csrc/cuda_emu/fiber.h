// Fibers: execution contexts on stacks of our own, switched cooperatively. x86-64 switches with
// a few instructions (callee-saved registers, MXCSR and the x87 control word); elsewhere
// ucontext (portable, slower: it saves the signal mask with a system call per switch).
#pragma once

#include <stddef.h>
#include <stdint.h>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace kron_attn::emu {

#if defined(__x86_64__)

struct Context {
  void* sp = nullptr;
};

extern "C" void kron_attn_emu_switch(void** save_sp, void* load_sp);

// Saves the running context into `from` and resumes `to`.
inline void switch_context(Context* from, Context* to) { kron_attn_emu_switch(&from->sp, to->sp); }

// Prepares `ctx` to start `entry` (which must never return) on [stack, stack + bytes).
inline void make_context(Context* ctx, void* stack, size_t bytes, void (*entry)()) {
  // The frame kron_attn_emu_switch pops: MXCSR and x87 control word, r15..r12, rbx, rbp, then
  // the return address. After that `ret`, rsp is 8 mod 16, as on entry to any function.
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15);
  uint64_t* slot = reinterpret_cast<uint64_t*>(top - 16);
  slot[0] = reinterpret_cast<uint64_t>(entry);
  for (int i = 1; i <= 6; ++i) slot[-i] = 0;
  const uint64_t control = 0x1F80u | (uint64_t(0x037Fu) << 32);  // default MXCSR, x87 control word
  slot[-7] = control;
  ctx->sp = slot - 7;
}

#else

struct Context {
  ucontext_t uc;
};

inline void switch_context(Context* from, Context* to) { swapcontext(&from->uc, &to->uc); }

inline void make_context(Context* ctx, void* stack, size_t bytes, void (*entry)()) {
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = stack;
  ctx->uc.uc_stack.ss_size = bytes;
  ctx->uc.uc_link = nullptr;
  makecontext(&ctx->uc, entry, 0);
}

#endif

}  // namespace kron_attn::emu
