// The strided copy behind every shape op: values copied (or added) from one strided layout into
// another, as permute, slice, expand and cat need them.
#pragma once

#include <cstddef>
#include <vector>

#include <xgrad/core/shape.hpp>

namespace xgrad::kernels {

/// Element strides, one per axis (0 on the source side re-reads the same elements: a broadcast).
using Strides = std::vector<std::ptrdiff_t>;

/// Row-major strides, in elements, of a contiguous array of `shape`.
Strides contiguous_strides(const Shape& shape);

enum class Write { assign, add };

/// dst[i] = src[i] (or dst[i] += src[i]) for every multi-index i of `shape`, where element i lies
/// at sum_d i_d * strides[d] from each base pointer. The destination must not name one element
/// twice (no zero stride on an axis longer than 1).
void copy_strided(const float* src, const Strides& src_strides, float* dst, const Strides& dst_strides,
                  const Shape& shape, Write mode);

}  // namespace xgrad::kernels
