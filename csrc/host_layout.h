// The (T, T) bool layout tensor packed into the bit rows schedule.h reads (host code).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "schedule.h"

namespace kron_attn {

// T rows of layout_row_words(T) words; `layout` is a checked (T, T) bool CPU tensor.
inline std::vector<uint32_t> packed_layout(const at::Tensor& layout) {
  const at::Tensor lay = layout.contiguous();
  const int frames = static_cast<int>(lay.size(0)), row_words = layout_row_words(frames);
  std::vector<uint32_t> words(static_cast<size_t>(frames) * row_words);
  pack_layout(reinterpret_cast<const uint8_t*>(lay.data_ptr<bool>()), frames, words.data(), row_words);
  return words;
}

}  // namespace kron_attn
