// CPU implementation of the kron_attn ops: input preparation, the choice of instruction set,
// and the parallel loops over work items. The arithmetic is in kernel_impl.h.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "../checks.h"
#include "../host_layout.h"
#include "../schedule.h"
#include "cpu_isa.h"
#include "kernel.h"

namespace kron_attn::cpu {
namespace {

const IsaKernels& select_kernels() {
  const char* env = std::getenv("KRON_ATTN_CPU_ISA");
  const std::string want = env ? env : "";
  TORCH_CHECK(want.empty() || want == "avx512" || want == "avx2" || want == "generic",
              "KRON_ATTN_CPU_ISA must be one of avx512, avx2, generic; got '", want, "'");
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (want == "avx512") TORCH_CHECK(avx512, "KRON_ATTN_CPU_ISA=avx512 but this CPU lacks AVX-512");
  if (want == "avx2") TORCH_CHECK(avx2, "KRON_ATTN_CPU_ISA=avx2 but this CPU lacks AVX2/FMA");
  if (want != "generic") {
    if (avx512 && (want.empty() || want == "avx512")) return kernels_avx512();
    if (avx2) return kernels_avx2();
  }
#else
  TORCH_CHECK(want.empty() || want == "generic", "KRON_ATTN_CPU_ISA=", want, " needs an x86-64 CPU");
#endif
  return kernels_generic();
}

const IsaKernels& kernels() {
  static const IsaKernels& chosen = select_kernels();
  return chosen;
}

at::ScalarType accumulation_type(const char* op, at::ScalarType t) {
  TORCH_CHECK(t == at::kFloat || t == at::kDouble || t == at::kBFloat16 || t == at::kHalf, op,
              ": unsupported dtype ", t, " (expected float32, float64, bfloat16 or float16)");
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// The tensor as the kernel reads it: the accumulation dtype with a contiguous last dimension.
at::Tensor as_kernel_input(const at::Tensor& x, at::ScalarType acc) {
  if (x.scalar_type() != acc) return x.to(acc).contiguous();
  return x.stride(-1) == 1 ? x : x.contiguous();
}

template <class T>
Tensor4<const T> view4(const at::Tensor& x) {
  return {x.data_ptr<T>(), x.stride(0), x.stride(1), x.stride(2)};
}

// Query groups per (b, h) in the backward: enough work items to keep every thread busy.
int backward_groups(const Shape& s, int tiles) {
  const int64_t bh = s.B * s.H, threads = at::get_num_threads();
  const int64_t want = (2 * threads + bh - 1) / bh;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, tiles)));
}

// The kernel table's entry for T: the float or the double one.
template <class T, class F, class D>
auto of_type(F for_float, D for_double) {
  if constexpr (std::is_same_v<T, float>) {
    return for_float;
  } else {
    return for_double;
  }
}

template <class T>
void run_forward(const Shape& s, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                 const at::Tensor& layout, double scale, at::Tensor& out, at::Tensor& lse) {
  const std::vector<uint32_t> bits = packed_layout(layout);
  FwdParams<T> p{view4<T>(q), view4<T>(k), view4<T>(v), out.data_ptr<T>(), lse.data_ptr<T>(), bits.data(),
                 static_cast<int>(s.B), static_cast<int>(s.H), static_cast<int>(s.N), static_cast<int>(s.D),
                 static_cast<int>(s.frames), static_cast<int>(s.tokens), scale};
  const int tiles = FrameTiling::make(p.tokens, kQueryRows).num_tiles(p.frames);
  const auto fwd = of_type<T>(kernels().fwd_f, kernels().fwd_d);
  at::parallel_for(0, s.B * s.H * tiles, 1, [&](int64_t b, int64_t e) { fwd(p, b, e); });
}

template <class T>
void run_backward(const Shape& s, const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse, const at::Tensor& dlse,
                  const at::Tensor& layout, double scale, at::Tensor& dq, at::Tensor& dk, at::Tensor& dv) {
  const int tiles = FrameTiling::make(static_cast<int>(s.tokens), kQueryRows).num_tiles(static_cast<int>(s.frames));
  const int groups = backward_groups(s, tiles);
  // One group and no padding: dK, dV accumulate straight into the outputs.
  const bool direct = groups == 1 && padded(s.D) == s.D;
  at::Tensor ws = direct ? at::Tensor() : at::empty({2, s.B * s.H * groups, s.N, padded(s.D)}, q.options());
  T* dk_ws = direct ? dk.data_ptr<T>() : ws[0].data_ptr<T>();
  T* dv_ws = direct ? dv.data_ptr<T>() : ws[1].data_ptr<T>();
  const std::vector<uint32_t> bits = packed_layout(layout);
  BwdParams<T> p{view4<T>(q), view4<T>(k), view4<T>(v), view4<T>(out), view4<T>(dout), lse.data_ptr<T>(),
                 dlse.defined() ? dlse.data_ptr<T>() : nullptr, dq.data_ptr<T>(), dk_ws, dv_ws, bits.data(),
                 static_cast<int>(s.B), static_cast<int>(s.H), static_cast<int>(s.N), static_cast<int>(s.D),
                 static_cast<int>(s.frames), static_cast<int>(s.tokens), groups, scale};
  const auto bwd = of_type<T>(kernels().bwd_f, kernels().bwd_d);
  at::parallel_for(0, s.B * s.H * groups, 1, [&](int64_t b, int64_t e) { bwd(p, b, e); });
  if (direct) return;
  const auto reduce = of_type<T>(kernels().reduce_f, kernels().reduce_d);
  at::parallel_for(0, s.B * s.H * s.N, 64,
                   [&](int64_t b, int64_t e) { reduce(p, dk.data_ptr<T>(), dv.data_ptr<T>(), b, e); });
}

std::tuple<at::Tensor, at::Tensor> attention_fwd_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                     const at::Tensor& layout, double scale) {
  const char* op = "kron_attn.attention_fwd";
  const Shape s = check_inputs(op, q, k, v, layout);
  const at::ScalarType acc = accumulation_type(op, q.scalar_type());
  at::Tensor out = at::empty({s.B, s.H, s.N, s.D}, q.options().dtype(acc));
  at::Tensor lse = at::empty({s.B, s.H, s.N}, q.options().dtype(acc));
  if (out.numel() == 0) return {out.to(q.scalar_type()), lse};
  const at::Tensor qc = as_kernel_input(q, acc), kc = as_kernel_input(k, acc), vc = as_kernel_input(v, acc);
  if (acc == at::kDouble) {
    run_forward<double>(s, qc, kc, vc, layout, scale, out, lse);
  } else {
    run_forward<float>(s, qc, kc, vc, layout, scale, out, lse);
  }
  return {out.to(q.scalar_type()), lse};
}

Grads attention_bwd_cpu(const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const at::Tensor& out, const at::Tensor& lse, const at::Tensor& layout, double scale,
                        const std::optional<at::Tensor>& dlse) {
  const char* op = "kron_attn.attention_bwd";
  const at::ScalarType acc = accumulation_type(op, q.scalar_type());
  const Shape s = check_bwd_inputs(op, dout, q, k, v, out, lse, dlse, layout, acc);
  auto opts = q.options().dtype(acc);
  at::Tensor dq = at::empty({s.B, s.H, s.N, s.D}, opts), dk = at::empty_like(dq), dv = at::empty_like(dq);
  if (dq.numel() > 0) {
    const at::Tensor lsec = lse.contiguous(), dlsec = dlse.has_value() ? dlse->contiguous() : at::Tensor();
    const at::Tensor qc = as_kernel_input(q, acc), kc = as_kernel_input(k, acc), vc = as_kernel_input(v, acc);
    const at::Tensor oc = as_kernel_input(out, acc), dc = as_kernel_input(dout, acc);
    if (acc == at::kDouble) {
      run_backward<double>(s, dc, qc, kc, vc, oc, lsec, dlsec, layout, scale, dq, dk, dv);
    } else {
      run_backward<float>(s, dc, qc, kc, vc, oc, lsec, dlsec, layout, scale, dq, dk, dv);
    }
  }
  const auto dt = q.scalar_type();
  return {dq.to(dt), dk.to(dt), dv.to(dt)};
}

}  // namespace

std::string isa_name() { return kernels().name; }

}  // namespace kron_attn::cpu

TORCH_LIBRARY_IMPL(kron_attn, CPU, m) {
  m.impl("attention_fwd", &kron_attn::cpu::attention_fwd_cpu);
  m.impl("attention_bwd", &kron_attn::cpu::attention_bwd_cpu);
}
