// The C++ library through the dispatcher: one forward call against dense ATen math. ATen alone,
// not torch/torch.h: the C++ frontend's headers would be most of the test's build time.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cmath>
#include <cstdio>

int main() {
  const int64_t T = 3, L = 5, N = T * L;
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::manual_seed(0);
  auto q = at::randn({2, 2, N, 8}, opts), k = at::randn({2, 2, N, 8}, opts), v = at::randn({2, 2, N, 8}, opts);
  auto frames = at::arange(T);
  auto layout = frames.unsqueeze(1).ne(frames.unsqueeze(0));  // kmt
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("kron_attn::attention_fwd", "")
                .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                          const at::Tensor&, double)>();
  auto [out, lse] = op.call(q, k, v, layout, 0.5);

  auto tok = at::arange(N).div(L, "floor");
  auto mask = layout.index({tok.unsqueeze(1), tok.unsqueeze(0)}) | at::eye(N, at::kBool);
  auto scores = at::matmul(q, k.transpose(-1, -2)).mul(0.5).masked_fill(mask.logical_not(), -INFINITY);
  auto ref = at::matmul(scores.softmax(-1), v);
  const double err = (out - ref).abs().max().item<double>();
  std::printf("max error vs dense math: %.3g\n", err);
  return err < 1e-10 ? 0 : 1;
}
