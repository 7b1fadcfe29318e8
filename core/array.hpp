// The arrays every layer of xgrad holds: xtensor containers, row-major, their storage from the
// caching allocator. Tensor (autograd/) wraps an Array; data/ hands out Indices.
#pragma once

#include <cstdint>

#include <xtensor/xarray.hpp>

#include <xgrad/core/allocator.hpp>
#include <xgrad/core/shape.hpp>

namespace xgrad {

/// The value type: a contiguous row-major float32 array, its storage from xgrad's caching
/// allocator (core/allocator.hpp).
using Array = xt::xarray<float, xt::layout_type::row_major, CachingAllocator<float>>;
/// Integer tensors (token ids, class targets, argmax indices), as PyTorch's int64 tensors.
using Indices = xt::xarray<std::int64_t, xt::layout_type::row_major, CachingAllocator<std::int64_t>>;
/// Boolean tensors (masks): true marks the positions an op acts on.
using Mask = xt::xarray<bool, xt::layout_type::row_major, CachingAllocator<bool>>;

/// The shape of an xtensor array as xgrad's Shape.
inline Shape shape_of(const Array& array) { return Shape(array.shape().begin(), array.shape().end()); }

}  // namespace xgrad
