// Elementwise loops over contiguous arrays of n floats, split into blocks over the threads when
// long: the same-shape add (residual connections) and relu.
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// y_i = a_i + b_i.
void add(const float* a, const float* b, float* y, std::size_t n);

/// y_i = max(x_i, 0), 0 for a NaN (as the vectorized maximum gives).
void relu_forward(const float* x, float* y, std::size_t n);
/// dx_i = dy_i where y_i > 0, else 0; y the forward's output.
void relu_backward(const float* y, const float* dy, float* dx, std::size_t n);

}  // namespace xgrad::kernels
