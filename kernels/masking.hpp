// Selection by a boolean mask, the operands read through broadcast strides one last-axis row at
// a time: a (T, T) mask over (B, H, T, T) scores is never materialised.
#pragma once

#include <xgrad/core/shape.hpp>

namespace xgrad::kernels {

/// y = value where mask, else x: x and y of `shape`, mask of `mask_shape` broadcast to it.
void masked_fill(const float* x, const bool* mask, const Shape& mask_shape, float value, const Shape& shape, float* y);

/// y = a where condition, else b: each operand of its own shape, broadcast to y's `shape`.
void where(const bool* condition, const Shape& condition_shape, const float* a, const Shape& a_shape, const float* b,
           const Shape& b_shape, const Shape& shape, float* y);

/// y = g where mask == keep, else exactly 0 (also where g is inf or NaN): g and y of `shape`,
/// mask of `mask_shape` broadcast to it. The gradient of a selection.
void select_grad(const float* g, const bool* mask, const Shape& mask_shape, bool keep, const Shape& shape, float* y);

}  // namespace xgrad::kernels
