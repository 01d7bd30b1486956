// Constants the host code and every kernel share. Scores are kept in base 2 (exp2 and log2 are the
// fast ones on every target): the scale is multiplied by log2 e, lse converted back with ln 2.
// Device code takes them as float, converted at compile time.
#pragma once

namespace kron_attn {

// The widest head the ops take (every backend; the CUDA kernels cover fewer: cuda/coverage.h).
constexpr int kMaxHeadDim = 256;

constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

}  // namespace kron_attn
