// Reductions over all axes or over given axes (negative axes count from the end).
//
// Axis lists follow PyTorch: each axis in [-rank, rank), none twice, and an EMPTY list means
// every axis (PyTorch's dim=[] and dim=None). A 0-d tensor accepts axis 0 or -1 and reduces
// nothing, as in PyTorch. Sums accumulate in double. A bad axis throws xgrad::Error.
#pragma once

#include <cstdint>
#include <tuple>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// Sum of all elements (a 0-d tensor). d/dx = 1.
Tensor sum(const Tensor& x);
/// Sum over `axes` (empty: all); keepdim keeps them with size 1. d/dx = 1 (broadcast back).
/// The sum over an empty axis is 0.
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
/// Mean of all elements. d/dx = 1/n.
Tensor mean(const Tensor& x);
/// Mean over `axes` (empty: all). The mean over an empty axis is NaN, as in PyTorch.
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
/// Variance over `axes` (empty: all) with Bessel's correction (divide by n - correction), as
/// torch.var. d/dx = 2 (x - mean) / (n - correction). Where PyTorch warns and returns inf or NaN
/// (n - correction <= 0), this throws xgrad::Error.
Tensor var(const Tensor& x, const std::vector<std::int64_t>& axes, std::int64_t correction = 1,
           bool keepdim = false);
/// Largest element (a 0-d tensor). The gradient goes to the first largest element. A NaN is
/// larger than everything (the first NaN wins), as in PyTorch. An empty tensor throws.
Tensor max(const Tensor& x);
/// Largest along `axis` and its index, as torch.max(x, dim): the first index among equal values
/// (or the first NaN). The gradient goes to that index. An empty `axis` throws.
std::tuple<Tensor, Indices> max(const Tensor& x, std::int64_t axis, bool keepdim = false);
/// Indices of the largest elements along `axis`, as torch.argmax (first index on ties).
Indices argmax(const Tensor& x, std::int64_t axis, bool keepdim = false);

}  // namespace xgrad
