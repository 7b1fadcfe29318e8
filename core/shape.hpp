// Shapes and axes: the small vocabulary every op uses to check and describe its inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xstorage.hpp>

namespace xgrad {

/// A shape: the sizes of the axes, outermost first. A vector with room for four axes inside it
/// (more go to the heap), the type xtensor keeps an array's shape in: taking a tensor's shape
/// allocates nothing.
using Shape = xt::svector<std::size_t, 4>;

/// "[32,64]": how shapes appear in error messages.
std::string shape_str(const Shape& shape);

/// "[1,2]": the multi-index of row-major flat position `flat` in an array of `shape`.
std::string index_str(std::size_t flat, const Shape& shape);

/// Product of the dimensions (1 for a scalar).
std::size_t numel_of(const Shape& shape);

/// NumPy broadcasting of two shapes; throws naming `op` when they are incompatible.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

/// A PyTorch-style axis in [-rank, rank) made non-negative; throws naming `op` when out of range.
std::size_t normalize_axis(const char* op, std::int64_t axis, std::size_t rank);

/// Several axes normalized, sorted and checked for duplicates. Empty means "all axes".
std::vector<std::size_t> normalize_axes(const char* op, const std::vector<std::int64_t>& axes,
                                        std::size_t rank);

}  // namespace xgrad
