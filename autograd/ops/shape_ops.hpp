// Shape ops: they move or copy values without arithmetic; each backward puts the gradient back
// where the values came from. Every xgrad tensor holds a contiguous array, so these return a new
// contiguous tensor (transpose and permute copy); hot paths avoid the copies with GEMM transpose flags.
// Where PyTorch would return a view that changes nothing (transpose of an axis with itself, an
// identity permute, squeeze of a non-unit axis, a full slice, expand to the same shape, flatten of
// a single axis, contiguous), x itself is returned.
#pragma once

#include <cstdint>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// The same values in a new shape; one dimension may be -1 (inferred). dx = dy reshaped back.
Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape);
/// As reshape (every xgrad tensor is contiguous, so a view is always possible).
Tensor view(const Tensor& x, const std::vector<std::int64_t>& shape);
/// Axes start..end (inclusive, negative from the end) merged into one.
Tensor flatten(const Tensor& x, std::int64_t start_axis = 0, std::int64_t end_axis = -1);
/// Swaps two axes. dx = dy with the same two axes swapped back.
Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1);
/// Reorders the axes: result axis i is input axis dims[i] (negative dims count from the end).
/// dx = dy permuted by the inverse permutation.
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims);
/// Inserts an axis of size 1 at `axis` (in [-rank-1, rank]).
Tensor unsqueeze(const Tensor& x, std::int64_t axis);
/// Removes every axis of size 1.
Tensor squeeze(const Tensor& x);
/// Removes `axis` if its size is 1 (otherwise returns x unchanged, as PyTorch).
Tensor squeeze(const Tensor& x, std::int64_t axis);
/// Elements start, start+step, ... < end along `axis` (Python slicing: negative start/end count
/// from the end and are clamped to the axis; step must be >= 1). dx is zero outside the slice and
/// dy inside it (added, so several slices of one tensor accumulate).
Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step = 1);
/// `length` elements from `start` (in [-size, size], negative from the end) along `axis`; out of
/// range throws. Backward as slice.
Tensor narrow(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t length);
/// Concatenation along `axis`; all other axes must agree. Input i's gradient is its slice of dy.
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t axis = 0);
/// Pieces of `split_size` along `axis` (the last may be smaller; split_size 0 only for an empty
/// axis). Each piece is its own narrow-like record of x, so the pieces' gradients add up in x and
/// an unused piece contributes zero.
std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t axis = 0);
/// Pieces of the given sizes along `axis`; they must add up to the axis' size.
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t axis = 0);
/// Pieces of ceil(size / chunks) along `axis` (the last may be smaller, and there may be fewer
/// than `chunks` of them, as PyTorch); an empty axis gives `chunks` empty pieces.
std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t axis = 0);
/// Broadcast to `shape` (-1 keeps a dimension); the backward sums back (sum_to_shape).
Tensor expand(const Tensor& x, const std::vector<std::int64_t>& shape);
Tensor broadcast_to(const Tensor& x, const Shape& shape);
/// Identity: every xgrad tensor is already contiguous. Present for code written for PyTorch.
Tensor contiguous(const Tensor& x);

}  // namespace xgrad
