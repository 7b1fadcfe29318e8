// Softmax and log-softmax over one axis: fused, numerically stable kernels (the row maximum is
// subtracted first, so logits of 1e4 do not overflow). Any axis, negative ones counting from the
// end; a logit of -inf gets probability 0; a NaN makes its whole slice NaN, as in PyTorch.
#pragma once

#include <cstdint>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// y_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j.   dx_i = y_i (dy_i - sum_j dy_j y_j).
Tensor softmax(const Tensor& x, std::int64_t axis);
/// y_i = x_i - m - log sum_j exp(x_j - m).                    dx_i = dy_i - exp(y_i) sum_j dy_j.
Tensor log_softmax(const Tensor& x, std::int64_t axis);

}  // namespace xgrad
