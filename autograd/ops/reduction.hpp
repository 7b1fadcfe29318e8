// Reductions over all axes or over given axes (negative axes count from the end).
#pragma once

#include <cstdint>
#include <tuple>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// Sum of all elements (a 0-d tensor). d/dx = 1.
Tensor sum(const Tensor& x);
/// Sum over `axes`; keepdim keeps them with size 1. d/dx = 1 (broadcast back).
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
/// Mean of all elements. d/dx = 1/n.
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
/// Variance over `axes` with Bessel's correction (divide by n - correction), as torch.var.
/// d/dx = 2 (x - mean) / (n - correction).
Tensor var(const Tensor& x, const std::vector<std::int64_t>& axes, std::int64_t correction = 1,
           bool keepdim = false);
/// Largest element (a 0-d tensor). The gradient goes to the first largest element.
Tensor max(const Tensor& x);
/// Largest along `axis` and its index, as torch.max(x, dim). The gradient goes to that index.
std::tuple<Tensor, Indices> max(const Tensor& x, std::int64_t axis, bool keepdim = false);
/// Indices of the largest elements along `axis`, as torch.argmax.
Indices argmax(const Tensor& x, std::int64_t axis, bool keepdim = false);

}  // namespace xgrad
