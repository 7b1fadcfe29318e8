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

/// layer_norm(x + residual, weight, bias, eps) as one op: the sum is formed in the same pass over
/// each row (a post-LN residual connection, "Add & Norm"); x and residual both receive ds, the
/// gradient of the sum. residual must have x's shape.
Tensor add_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight = Tensor(),
                      const Tensor& bias = Tensor(), float eps = 1e-5f);

}  // namespace xgrad
