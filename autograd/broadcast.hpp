// Undoing broadcasting: the one helper every broadcasting op's backward calls.
#pragma once

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// Sums `grad` over the axes that broadcasting prepended or stretched from 1, so that the result
/// has `shape`. If d(out)/d(in) broadcast `in` from `shape`, this is the adjoint of that broadcast.
Array sum_to_shape(Array grad, const Shape& shape);

/// Whether an array's shape equals `shape`.
bool has_shape(const Array& array, const Shape& shape);

}  // namespace xgrad
