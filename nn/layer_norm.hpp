// nn::LayerNorm over the last axis.
#pragma once

#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Shape: (..., D) -> (..., D). y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis.
/// Parameters (with elementwise_affine): weight (D) = 1, bias (D) = 0.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::size_t normalized_shape, float eps = 1e-5f, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) const;
  /// forward(x + residual) in one pass (functional::add_layer_norm): a post-LN "Add & Norm".
  Tensor forward(const Tensor& x, const Tensor& residual) const;

  Tensor weight;
  Tensor bias;

 protected:
  std::string extra_repr() const override;

 private:
  std::size_t normalized_shape_;
  float eps_;
};

}  // namespace xgrad::nn
