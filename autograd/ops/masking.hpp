// Selecting values by a boolean mask.
#pragma once

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// x with `value` where mask is true; mask broadcasts to x's shape. d/dx = 0 where masked, else 1.
Tensor masked_fill(const Tensor& x, const Mask& mask, float value);
/// a where condition is true, else b; all three broadcast together. The gradient goes to the
/// side that was picked (summed back to each input's shape).
/// Call it as xgrad::where: Mask is an xtensor type, so an unqualified where(mask, a, b) also
/// finds xt::where by argument-dependent lookup, which wins for non-const or temporary arguments.
Tensor where(const Mask& condition, const Tensor& a, const Tensor& b);

}  // namespace xgrad
