// Input checks shared by every backend of the kron_attn ops. Messages name the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>
#include <tuple>

#include "constants.h"

namespace kron_attn {

struct Shape {
  int64_t B, H, N, D, frames, tokens;
};

// What every backend's attention_bwd returns: dq, dk, dv.
using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

inline void check_same(const char* op, const char* name, const at::Tensor& x, const at::Tensor& q) {
  TORCH_CHECK(x.dim() == 4, op, ": ", name, " must be 4-D (B, H, N, D), got ", x.dim(), "-D");
  TORCH_CHECK(x.sizes() == q.sizes(), op, ": ", name, " has shape ", x.sizes(), " but q has ", q.sizes());
  TORCH_CHECK(x.scalar_type() == q.scalar_type(), op, ": ", name, " is ", x.scalar_type(), " but q is ",
              q.scalar_type());
  TORCH_CHECK(x.device() == q.device(), op, ": ", name, " is on ", x.device(), " but q is on ", q.device());
}

// Checks q, k, v and the (T, T) layout; returns the problem's shape.
inline Shape check_inputs(const char* op, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const at::Tensor& layout) {
  TORCH_CHECK(q.dim() == 4, op, ": q must be 4-D (B, H, N, D), got ", q.dim(), "-D");
  check_same(op, "k", k, q);
  check_same(op, "v", v, q);
  TORCH_CHECK(layout.dim() == 2 && layout.size(0) == layout.size(1), op,
              ": layout must be a square (T, T) matrix, got shape ", layout.sizes());
  TORCH_CHECK(layout.scalar_type() == at::kBool, op, ": layout must be torch.bool, got ", layout.scalar_type());
  TORCH_CHECK(layout.device().is_cpu(), op, ": layout must be a CPU tensor, got one on ", layout.device());
  const int64_t T = layout.size(0), N = q.size(2), D = q.size(3);
  TORCH_CHECK(T >= 1, op, ": frames must be >= 1, got ", T);
  TORCH_CHECK(N % T == 0, op, ": sequence length N = ", N, " is not divisible by frames = ", T);
  TORCH_CHECK(D >= 1 && D <= kMaxHeadDim, op, ": head dim D = ", D, " is out of range [1, ", kMaxHeadDim, "]");
  TORCH_CHECK(N <= INT32_MAX / kMaxHeadDim, op, ": sequence length N = ", N, " is too long");
  return Shape{q.size(0), q.size(1), N, D, T, N / T};
}

// lse is float32, or float64 for float64 inputs.
inline void check_lse(const char* op, const at::Tensor& lse, const Shape& s, const at::Tensor& q,
                      at::ScalarType expected, const char* name = "lse") {
  TORCH_CHECK(lse.dim() == 3 && lse.size(0) == s.B && lse.size(1) == s.H && lse.size(2) == s.N, op, ": ", name,
              " must have shape (B, H, N) = (", s.B, ", ", s.H, ", ", s.N, "), got ", lse.sizes());
  TORCH_CHECK(lse.scalar_type() == expected, op, ": ", name, " must be ", expected, ", got ", lse.scalar_type());
  TORCH_CHECK(lse.device() == q.device(), op, ": ", name, " is on ", lse.device(), " but q is on ", q.device());
}

// Checks the backward's inputs: q, k, v and the layout as the forward does, out and dout shaped
// like q, lse and (when given) dlse (B, H, N) of lse_type. Returns the problem's shape.
inline Shape check_bwd_inputs(const char* op, const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k,
                              const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse,
                              const std::optional<at::Tensor>& dlse, const at::Tensor& layout,
                              at::ScalarType lse_type) {
  const Shape s = check_inputs(op, q, k, v, layout);
  check_same(op, "out", out, q);
  check_same(op, "dout", dout, q);
  check_lse(op, lse, s, q, lse_type);
  if (dlse.has_value()) check_lse(op, *dlse, s, q, lse_type, "dlse");
  return s;
}

}  // namespace kron_attn
