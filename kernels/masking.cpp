// Selections row by row: a row whose mask is broadcast along the last axis is one fill or copy,
// any other a vectorized select.
#include <xgrad/kernels/masking.hpp>

#include <algorithm>
#include <array>
#include <vector>

namespace xgrad::kernels {

namespace {

/// The element strides with which an operand of shape `shape` is read when broadcast to `out`:
/// 0 on the axes that broadcasting prepends or stretches from 1. One per axis of `out`.
std::vector<std::size_t> broadcast_strides(const Shape& shape, const Shape& out) {
  std::vector<std::size_t> strides(out.size(), 0);
  std::size_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    const std::size_t axis = i + out.size() - shape.size();
    strides[axis] = shape[i] == 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

template <std::size_t K>
using Offsets = std::array<std::size_t, K>;

/// Walks `out` (row-major, contiguous) one last-axis row at a time. For each row calls
/// row(out_offset, base, step, n): operand k's elements for that row are at base[k] + j * step[k],
/// j < n (step is 1 or 0, a broadcast last axis).
template <std::size_t K, class Row>
void for_each_row(const Shape& out, const std::array<Shape, K>& operands, Row row) {
  const std::size_t total = numel_of(out);
  if (total == 0) return;
  const std::size_t rank = out.size();
  const std::size_t n = rank > 0 ? out.back() : 1;
  std::array<std::vector<std::size_t>, K> strides;
  Offsets<K> step{};
  for (std::size_t k = 0; k < K; ++k) {
    strides[k] = broadcast_strides(operands[k], out);
    step[k] = rank > 0 ? strides[k][rank - 1] : 0;
  }
  std::vector<std::size_t> index(rank, 0);  // the current row's index on the leading axes
  Offsets<K> base{};
  for (std::size_t offset = 0; offset < total; offset += n) {
    row(offset, base, step, n);
    for (std::size_t d = rank > 0 ? rank - 1 : 0; d-- > 0;) {  // odometer over axes rank-2 .. 0
      for (std::size_t k = 0; k < K; ++k) base[k] += strides[k][d];
      if (++index[d] < out[d]) break;
      for (std::size_t k = 0; k < K; ++k) base[k] -= strides[k][d] * out[d];
      index[d] = 0;
    }
  }
}

}  // namespace

void masked_fill(const float* x, const bool* mask, const Shape& mask_shape, float value, const Shape& shape, float* y) {
  for_each_row<1>(shape, {mask_shape}, [&](std::size_t offset, const Offsets<1>& base, const Offsets<1>& step,
                                           std::size_t n) {
    const bool* mr = mask + base[0];
    if (step[0] == 0) {
      if (mr[0]) std::fill(y + offset, y + offset + n, value);
      else std::copy(x + offset, x + offset + n, y + offset);
    } else {
#pragma omp simd
      for (std::size_t j = 0; j < n; ++j) y[offset + j] = mr[j] ? value : x[offset + j];
    }
  });
}

void where(const bool* condition, const Shape& condition_shape, const float* a, const Shape& a_shape, const float* b,
           const Shape& b_shape, const Shape& shape, float* y) {
  for_each_row<3>(shape, {condition_shape, a_shape, b_shape},
                  [&](std::size_t offset, const Offsets<3>& base, const Offsets<3>& step, std::size_t n) {
                    const bool* cr = condition + base[0];
                    const float* ar = a + base[1];
                    const float* br = b + base[2];
                    for (std::size_t j = 0; j < n; ++j) {
                      y[offset + j] = cr[j * step[0]] ? ar[j * step[1]] : br[j * step[2]];
                    }
                  });
}

void select_grad(const float* g, const bool* mask, const Shape& mask_shape, bool keep, const Shape& shape, float* y) {
  for_each_row<1>(shape, {mask_shape}, [&](std::size_t offset, const Offsets<1>& base, const Offsets<1>& step,
                                           std::size_t n) {
    const bool* mr = mask + base[0];
    if (step[0] == 0) {  // exact zeros, also where the gradient is inf or NaN
      if (mr[0] == keep) std::copy(g + offset, g + offset + n, y + offset);
      else std::fill(y + offset, y + offset + n, 0.f);
    } else {
#pragma omp simd
      for (std::size_t j = 0; j < n; ++j) y[offset + j] = mr[j] == keep ? g[offset + j] : 0.f;
    }
  });
}

}  // namespace xgrad::kernels
