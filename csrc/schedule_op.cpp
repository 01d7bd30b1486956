// kron_attn::block_schedule: the block schedule of schedule.h as index tensors, for kernels
// that cannot include the header (Triton).
#include <ATen/core/Tensor.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "checks.h"
#include "host_layout.h"
#include "schedule.h"

namespace kron_attn {
namespace {

// For each row tile, the column tiles ColumnWalk visits (ascending, padded with -1) and their
// kinds (TILE_FULL or TILE_PARTIAL). Transposed when `by_key`.
std::tuple<at::Tensor, at::Tensor, at::Tensor> tile_lists(const FrameLayout& lay, int64_t n, int64_t rows_per_tile,
                                                          int64_t cols_per_tile, bool by_key) {
  const int n_rows = static_cast<int>((n + rows_per_tile - 1) / rows_per_tile);
  const int n_cols = static_cast<int>((n + cols_per_tile - 1) / cols_per_tile);
  at::Tensor count = at::zeros({n_rows}, at::kInt);
  at::Tensor tiles = at::full({n_rows, std::max(n_cols, 1)}, -1, at::kInt);
  at::Tensor kinds = at::zeros({n_rows, std::max(n_cols, 1)}, at::kInt);
  auto c = count.accessor<int, 1>();
  auto t = tiles.accessor<int, 2>();
  auto k = kinds.accessor<int, 2>();
  std::vector<uint32_t> prefix(lay.frames + 1);
  for (int r = 0; r < n_rows; ++r) {
    const int r0 = static_cast<int>(r * rows_per_tile), r1 = static_cast<int>(std::min(n, (r + 1) * rows_per_tile));
    walk_prefix(lay, r0, r1, by_key, prefix.data());
    for (ColumnWalk w = ColumnWalk::start(prefix.data(), lay.frames, lay.tokens, static_cast<int>(cols_per_tile));
         !w.done(); w.next()) {
      t[r][c[r]] = w.tile;
      k[r][c[r]] = w.kind;
      ++c[r];
    }
  }
  return {count, tiles, kinds};
}

std::vector<at::Tensor> block_schedule(const at::Tensor& layout, int64_t tokens, int64_t block_m, int64_t block_n) {
  TORCH_CHECK(layout.dim() == 2 && layout.size(0) == layout.size(1) && layout.scalar_type() == at::kBool &&
                  layout.device().is_cpu(),
              "kron_attn.block_schedule: layout must be a (T, T) bool CPU tensor, got ", layout.sizes(), " ",
              layout.scalar_type(), " on ", layout.device());
  TORCH_CHECK(tokens >= 1, "kron_attn.block_schedule: tokens must be >= 1, got ", tokens);
  TORCH_CHECK(block_m >= 1 && block_n >= 1, "kron_attn.block_schedule: block sizes must be >= 1");
  const int frames = static_cast<int>(layout.size(0));
  const std::vector<uint32_t> bits = packed_layout(layout);
  const FrameLayout lay{bits.data(), layout_row_words(frames), frames, static_cast<int>(tokens)};
  const int64_t n = layout.size(0) * tokens;
  auto [qc, qt, qk] = tile_lists(lay, n, block_m, block_n, /*by_key=*/false);
  auto [kc, kt, kk] = tile_lists(lay, n, block_n, block_m, /*by_key=*/true);
  return {qc, qt, qk, kc, kt, kk};
}

}  // namespace
}  // namespace kron_attn

TORCH_LIBRARY_IMPL(kron_attn, CPU, m) { m.impl("block_schedule", &kron_attn::block_schedule); }
