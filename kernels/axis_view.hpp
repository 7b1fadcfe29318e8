// A row-major tensor seen around one axis as (outer, n, inner): how the row kernels address the
// slices they reduce over.
#pragma once

#include <cstddef>

#include <xgrad/core/shape.hpp>

namespace xgrad::kernels {

/// Element (o, k, i) sits at (o * n + k) * inner + i, with o < outer (the axes before), k < n
/// (the axis), i < inner (the axes after, contiguous).
struct AxisView {
  std::size_t outer = 1, n = 1, inner = 1;
};

inline AxisView axis_view(const Shape& shape, std::size_t axis) {
  AxisView v;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < axis) v.outer *= shape[d];
    else if (d == axis) v.n = shape[d];
    else v.inner *= shape[d];
  }
  return v;
}

}  // namespace xgrad::kernels
