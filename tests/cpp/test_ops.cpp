// The C++ library through the dispatcher: one forward call against dense libtorch math.
#include <torch/torch.h>

#include <cstdio>

int main() {
  const int64_t T = 3, L = 5, N = T * L;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  torch::manual_seed(0);
  auto q = torch::randn({2, 2, N, 8}, opts), k = torch::randn({2, 2, N, 8}, opts), v = torch::randn({2, 2, N, 8}, opts);
  auto frames = torch::arange(T);
  auto layout = frames.unsqueeze(1).ne(frames.unsqueeze(0));  // kmt
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("kron_attn::attention_fwd", "")
                .typed<std::tuple<torch::Tensor, torch::Tensor>(const torch::Tensor&, const torch::Tensor&,
                                                                const torch::Tensor&, const torch::Tensor&, double)>();
  auto [out, lse] = op.call(q, k, v, layout, 0.5);

  auto tok = torch::arange(N).div(L, "floor");
  auto mask = layout.index({tok.unsqueeze(1), tok.unsqueeze(0)}) | torch::eye(N, torch::kBool);
  auto scores = torch::matmul(q, k.transpose(-1, -2)).mul(0.5).masked_fill(mask.logical_not(), -INFINITY);
  auto ref = torch::matmul(scores.softmax(-1), v);
  const double err = (out - ref).abs().max().item<double>();
  std::printf("max error vs dense math: %.3g\n", err);
  return err < 1e-10 ? 0 : 1;
}
