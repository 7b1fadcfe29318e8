// Softmax rows: softmax and log-softmax over any axis of a tensor (forward and backward), the
// masked softmax of attention rows, and one row's log-sum-exp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>

#include <xgrad/kernels/axis_view.hpp>
#include <xgrad/kernels/row_sums.hpp>
#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

// Legend: x, y, dy, dx are tensors seen as (outer, n, inner) around the softmax axis (AxisView),
// each slice (o, :, i) n elements at stride inner. Along the last axis (inner 1) a slice is a
// contiguous row; along another axis a tile of columns of an (n, inner) block goes at once.

/// y = softmax(x) over each slice: y_k = exp(x_k - m) / sum_j exp(x_j - m), m = max_j x_j.
void softmax_forward(const float* x, float* y, const AxisView& v);
/// dx_k = y_k (dy_k - sum_j dy_j y_j) over each slice, y the forward's output.
void softmax_backward(const float* y, const float* dy, float* dx, const AxisView& v);
/// y = log_softmax(x) over each slice: y_k = (x_k - m) - log sum_j exp(x_j - m), m = max_j x_j.
void log_softmax_forward(const float* x, float* y, const AxisView& v);
/// dx_k = dy_k - exp(y_k) sum_j dy_j over each slice, y the forward's output.
void log_softmax_backward(const float* y, const float* dy, float* dx, const AxisView& v);

/// log sum_k exp(x_k) of one row of n > 0 elements, as m + log sum_k exp(x_k - m) with
/// m = max_k x_k (the sum in float, the logarithm and the addition in double).
double log_sum_exp(const float* x, std::size_t n);

/// The two numbers that give a softmax row back from its scores: the largest score and the
/// reciprocal of the sum of exp(score - max). max is -inf for a row whose keys are all masked.
struct SoftmaxRowStats {
  float max, inv_sum;
};

/// Softmax of one row of attention scores in place, keys whose score is -inf (masked) getting
/// exactly 0; a row with every key masked becomes all zeros (never NaN). Returns its statistics.
inline SoftmaxRowStats masked_softmax_row(float* row, std::size_t n) {
  const float max = row_max(row, n);
  if (max == -std::numeric_limits<float>::infinity()) {
    std::fill(row, row + n, 0.f);
    return {max, 0.f};
  }
  const float inv = 1.f / row_exp_sum(row, row, n, max);  // exactly 0 for a masked (-inf) score
#pragma omp simd
  for (std::size_t j = 0; j < n; ++j) row[j] *= inv;
  return {max, inv};
}

/// The same softmax row again from the same scores and the statistics masked_softmax_row
/// returned for them: bit for bit its result.
inline void softmax_row_from_stats(float* row, std::size_t n, SoftmaxRowStats stats) {
  if (stats.max == -std::numeric_limits<float>::infinity()) {
    std::fill(row, row + n, 0.f);
    return;
  }
  vec::over_lanes(n, [&](std::size_t j, std::size_t lanes) {
    vec::store(row + j, vec::exp_nonpositive(vec::load(row + j, lanes, 0.f) - stats.max) * stats.inv_sum, lanes);
  });
}

}  // namespace xgrad::kernels
