// Reductions over a tensor's axes: sums in double over runs of reduced axes, their adjoint (a
// value broadcast back over those runs), and the maximum along one axis with its index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <xgrad/core/shape.hpp>
#include <xgrad/kernels/axis_view.hpp>

namespace xgrad::kernels {

/// A run of adjacent axes that are all reduced or all kept: contiguous in memory, so a reduction
/// or a broadcast handles it as one axis. A tensor is its runs in order; the reduced tensor it
/// pairs with is its kept runs in order (row-major).
struct Run {
  std::size_t size;
  bool reduced;
};

/// The runs of `shape` when the axes marked in `reduced` are reduced; a 0-d tensor is one kept run.
std::vector<Run> runs_of(const Shape& shape, const std::vector<bool>& reduced);

/// s = sum_k x_k over the reduced runs, accumulated in double, laid out as the kept runs. The
/// last reduced run goes first, each pass shrinking the data.
std::vector<double> reduce_sum(const float* x, const std::vector<Run>& runs);
/// s = sum_k x_k^2 (each square in float) over the reduced runs, as reduce_sum.
std::vector<double> reduce_sum_squares(const float* x, const std::vector<Run>& runs);

/// out = x - m, with m (the kept runs) broadcast over the reduced runs; out may be x.
void broadcast_sub(const std::vector<Run>& runs, const float* x, const float* m, float* out);
/// out = g scale, with g (the kept runs) broadcast over the reduced runs: the adjoint of a sum.
void broadcast_scale(const std::vector<Run>& runs, const float* g, float scale, float* out);
/// out = (d g) scale, with g (the kept runs) broadcast over the reduced runs; out may be d.
void broadcast_mul_scale(const std::vector<Run>& runs, const float* d, const float* g, float scale, float* out);

/// values(o, i) = max_k x(o, k, i) and indices(o, i) its first k, x seen as (outer, n, inner)
/// with n > 0. A NaN beats every number (the first NaN wins), as in PyTorch.
void max_along_axis(const float* x, float* values, std::int64_t* indices, const AxisView& v);

}  // namespace xgrad::kernels
