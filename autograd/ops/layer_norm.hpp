// Layer normalization over the last axis: one fused forward and one fused backward.
#pragma once

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

/// y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance), as
/// torch.nn.functional.layer_norm(x, {D}, weight, bias, eps). weight and bias, of shape [D], may
/// be undefined (no affine transform). With xhat = (x - mean) * rstd and g = dy * weight:
///   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dweight = sum dy * xhat,  dbias = sum dy.
/// A 0-d x, or a weight or bias whose shape is not [D], throws xgrad::Error.
Tensor layer_norm(const Tensor& x, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  float eps = 1e-5f);

}  // namespace xgrad
