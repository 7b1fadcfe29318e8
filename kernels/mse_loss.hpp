// Mean squared error's passes over the difference d = input - target (broadcast already done):
// the squares forward, and 2 d times the upstream gradient backward.
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// l_i = d_i^2 for i < n: the unreduced loss.
void mse_forward(const float* d, float* l, std::size_t n);
/// sum_i d_i^2 in double, added in index order: the loss before the mean's division.
double mse_sum(const float* d, std::size_t n);
/// dd_i = 2 d_i g_i: the gradient of the unreduced loss l_i = d_i^2 under upstream g (n).
void mse_backward(const float* d, const float* g, float* dd, std::size_t n);
/// dd_i = s d_i: the gradient of the reduced loss, s = 2 g (divided by n for the mean).
void mse_backward_reduced(const float* d, float s, float* dd, std::size_t n);

}  // namespace xgrad::kernels
