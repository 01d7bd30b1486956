// Host side of the CUDA ops, shared by the GPU build (attention_cuda.cpp) and the SIMT emulator
// (../cuda_emu/attention_emu.cpp), so that both take the same checks, dtypes, parameters and
// dispatch to the same kernel instantiations. Host code only, compiled by the host compiler.
//
// Supported: bfloat16 and float16 on the tensor cores; float32 is converted to bfloat16 for the
// kernel and the results converted back (a float32 caller gets bfloat16 accuracy, about 1e-2
// relative; bfloat16 rather than float16 because it cannot overflow on any float32 input).
// float64 is refused (the reference backend is exact in float64). Head dims and the frame limit:
// coverage.h.
//
// `Device` says where the tensors live and how launches are made:
//   static void check(const char* op, const at::Tensor& q);   // right device, able to run
//   static cudaStream_t stream();
//   Device::Scope scope(q, {{"q", q, false}, ...});           // device guard / emulator buffers
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include <cstring>
#include <initializer_list>
#include <optional>
#include <iterator>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../checks.h"
#include "../constants.h"
#include "../schedule.h"
#include "coverage.h"
#include "launch.h"
#include "params.h"

namespace kron_attn::cuda {

// A tensor a launch reads (writable = false) or writes, named for the emulator's messages.
struct NamedTensor {
  const char* name;
  const at::Tensor& tensor;
  bool writable;
};
using NamedTensors = std::initializer_list<NamedTensor>;

inline bool covers_head_dim(int64_t d) {
  for (int x : kHeadDims) {
    if (x == d) return true;
  }
  return false;
}

// "32, 64, 96 and 128"
inline std::string head_dims_text() {
  std::string s;
  constexpr size_t n = std::size(kHeadDims);
  for (size_t i = 0; i < n; ++i) s += (i == 0 ? "" : i + 1 == n ? " and " : ", ") + std::to_string(kHeadDims[i]);
  return s;
}

// The element type the kernel runs in.
inline at::ScalarType kernel_dtype(const char* op, at::ScalarType t) {
  TORCH_CHECK(t == at::kBFloat16 || t == at::kHalf || t == at::kFloat, op,
              ": the CUDA kernel supports bfloat16, float16 and float32 (computed in bfloat16), got ", t,
              "; use backend='reference' for float64");
  return t == at::kFloat ? at::kBFloat16 : t;
}

inline void check_coverage(const char* op, const Shape& s) {
  TORCH_CHECK(covers_head_dim(s.D), op, ": the CUDA kernel supports head dims ", head_dims_text(), ", got D = ", s.D,
              "; kron_attn.attention(..., backend='auto') uses the Triton kernel for other head dims");
  TORCH_CHECK(s.frames <= kMaxFrames, op, ": the CUDA kernel supports up to ", kMaxFrames, " frames, got ", s.frames,
              "; kron_attn.attention(..., backend='auto') uses the Triton kernel for longer clips");
}

// What cp.async needs: the kernel dtype, a contiguous last dimension, 16-byte aligned rows and
// base, and a row stride whose bytes fit 31 bits (copy.h advances by it in 32-bit arithmetic).
// Anything else is copied once into a fresh contiguous tensor.
inline at::Tensor as_kernel_input(const at::Tensor& x, at::ScalarType dt) {
  if (x.scalar_type() != dt) return x.to(dt, /*non_blocking=*/false, /*copy=*/false, at::MemoryFormat::Contiguous);
  const bool aligned = x.stride(-1) == 1 && x.stride(0) % 8 == 0 && x.stride(1) % 8 == 0 && x.stride(2) % 8 == 0 &&
                       x.stride(2) < (int64_t{1} << 29) && reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0;
  return aligned ? x : x.clone(at::MemoryFormat::Contiguous);
}

inline Strides strides_of(const at::Tensor& x) { return {x.stride(0), x.stride(1), x.stride(2)}; }

inline LayoutBits layout_bits(const at::Tensor& layout) {
  LayoutBits bits;
  std::memset(&bits, 0, sizeof(bits));
  const at::Tensor lay = layout.contiguous();
  pack_layout(reinterpret_cast<const uint8_t*>(lay.data_ptr<bool>()), static_cast<int>(lay.size(0)), bits.words,
              kLayoutRowWords);
  return bits;
}

// The parameters both kernels take: inputs, sizes, the scale in base 2 and the layout.
template <class Params>
void set_common(Params& p, const Shape& s, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                const at::Tensor& layout, double scale) {
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.q_stride = strides_of(q);
  p.k_stride = strides_of(k);
  p.v_stride = strides_of(v);
  p.heads = static_cast<int>(s.H);
  p.tokens_total = static_cast<int>(s.N);
  p.frames = static_cast<int>(s.frames);
  p.tokens = static_cast<int>(s.tokens);
  p.scale_log2 = static_cast<float>(scale * kLog2e);
  p.layout = layout_bits(layout);
}

// fn(std::integral_constant<int, D>, element) for the compiled head dim D == d (kHeadDims) and the
// element type of dt (bfloat16 or float16).
template <class Fn, size_t... I>
void dispatch_head_dim(int64_t d, Fn&& fn, std::index_sequence<I...>) {
  const bool found = ((d == kHeadDims[I] ? (fn(std::integral_constant<int, kHeadDims[I]>{}), true) : false) || ...);
  TORCH_CHECK(found, "kron_attn: no CUDA kernel for head dim ", d);
}

template <class Fn>
void dispatch(int64_t d, at::ScalarType dt, Fn&& fn) {
  dispatch_head_dim(
      d,
      [&](auto dim) {
        if (dt == at::kBFloat16) {
          fn(dim, __nv_bfloat16{});
        } else {
          fn(dim, __half{});
        }
      },
      std::make_index_sequence<std::size(kHeadDims)>{});
}

template <class Device>
std::tuple<at::Tensor, at::Tensor> attention_fwd(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                 const at::Tensor& layout, double scale) {
  const char* op = "kron_attn.attention_fwd";
  const Shape s = check_inputs(op, q, k, v, layout);
  Device::check(op, q);
  check_coverage(op, s);
  const at::ScalarType dt = kernel_dtype(op, q.scalar_type());
  at::Tensor out = at::empty({s.B, s.H, s.N, s.D}, q.options().dtype(dt));
  at::Tensor lse = at::empty({s.B, s.H, s.N}, q.options().dtype(at::kFloat));
  if (out.numel() == 0) return {out.to(q.scalar_type()), lse};
  const at::Tensor qc = as_kernel_input(q, dt), kc = as_kernel_input(k, dt), vc = as_kernel_input(v, dt);
  const typename Device::Scope scope(
      q, {{"q", qc, false}, {"k", kc, false}, {"v", vc, false}, {"out", out, true}, {"lse", lse, true}});

  FwdParams p;
  set_common(p, s, qc, kc, vc, layout, scale);
  p.out = out.data_ptr();
  p.lse = lse.data_ptr<float>();
  const cudaStream_t stream = Device::stream();
  dispatch(s.D, dt, [&](auto dim, auto elem) { run_fwd<decltype(dim)::value, decltype(elem)>(p, s.B * s.H, stream); });
  return {out.to(q.scalar_type()), lse};
}

template <class Device>
Grads attention_bwd(const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& out, const at::Tensor& lse, const at::Tensor& layout, double scale,
                    const std::optional<at::Tensor>& dlse) {
  const char* op = "kron_attn.attention_bwd";
  const Shape s = check_bwd_inputs(op, dout, q, k, v, out, lse, dlse, layout, at::kFloat);
  Device::check(op, q);
  check_coverage(op, s);
  const at::ScalarType dt = kernel_dtype(op, q.scalar_type());
  auto opts = q.options().dtype(dt);
  at::Tensor dq = at::empty({s.B, s.H, s.N, s.D}, opts), dk = at::empty_like(dq), dv = at::empty_like(dq);
  const auto back = q.scalar_type();
  if (dq.numel() == 0) return {dq.to(back), dk.to(back), dv.to(back)};

  const at::Tensor qc = as_kernel_input(q, dt), kc = as_kernel_input(k, dt), vc = as_kernel_input(v, dt);
  const at::Tensor dc = as_kernel_input(dout, dt);
  const at::Tensor oc = out.to(dt, false, false, at::MemoryFormat::Contiguous).contiguous();
  const at::Tensor lsec = lse.contiguous(), dlsec = dlse.has_value() ? dlse->contiguous() : lsec;
  // delta and lse · log2 e, written by run_bwd's first kernel.
  at::Tensor stats = at::empty({2, s.B, s.H, s.N}, q.options().dtype(at::kFloat));
  const typename Device::Scope scope(q, {{"q", qc, false},
                                         {"k", kc, false},
                                         {"v", vc, false},
                                         {"dout", dc, false},
                                         {"out", oc, false},
                                         {"lse", lsec, false},
                                         {"dlse", dlsec, false},
                                         {"stats", stats, true},
                                         {"dq", dq, true},
                                         {"dk", dk, true},
                                         {"dv", dv, true}});
  BwdParams p;
  set_common(p, s, qc, kc, vc, layout, scale);
  p.dout = dc.data_ptr();
  p.out = oc.data_ptr();
  p.lse = lsec.data_ptr<float>();
  p.dlse = dlse.has_value() ? dlsec.data_ptr<float>() : nullptr;
  p.delta = stats[0].data_ptr<float>();
  p.lse2 = stats[1].data_ptr<float>();
  p.dq = dq.data_ptr();
  p.dk = dk.data_ptr();
  p.dv = dv.data_ptr();
  p.do_stride = strides_of(dc);
  p.scale = static_cast<float>(scale);
  const cudaStream_t stream = Device::stream();
  dispatch(s.D, dt, [&](auto dim, auto elem) { run_bwd<decltype(dim)::value, decltype(elem)>(p, s.B * s.H, stream); });
  return {dq.to(back), dk.to(back), dv.to(back)};
}

}  // namespace kron_attn::cuda
