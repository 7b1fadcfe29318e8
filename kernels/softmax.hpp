// Softmax rows for the kernels that hold their scores in a row buffer (attention, decoding).
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>

#include <xgrad/kernels/simd.hpp>

namespace xgrad::kernels {

/// Softmax of one row of attention scores in place, keys whose score is -inf (masked) getting
/// exactly 0; a row with every key masked becomes all zeros (never NaN).
inline void masked_softmax_row(float* row, std::size_t n) {
  float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
  for (std::size_t j = 0; j < n; ++j) max = std::max(max, row[j]);
  if (max == -std::numeric_limits<float>::infinity()) {
    std::fill(row, row + n, 0.f);
    return;
  }
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (std::size_t j = 0; j < n; ++j) {
    const float e = exp_simd(row[j] - max);  // exactly 0 for a masked (-inf) score
    row[j] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
#pragma omp simd
  for (std::size_t j = 0; j < n; ++j) row[j] *= inv;
}

}  // namespace xgrad::kernels
