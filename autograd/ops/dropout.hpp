// Dropout with inverted scaling.
#pragma once

#include <xgrad/core/generator.hpp>
#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// Training: each element is zeroed with probability p and the rest scaled by 1/(1-p), so the
/// expectation is unchanged; the mask comes from `generator` and the backward reuses it.
/// Not training, or p == 0: x itself. p must be in [0, 1]; p == 1 gives zeros.
Tensor dropout(const Tensor& x, float p, bool training, Generator& generator = default_generator());

}  // namespace xgrad
