#include <xgrad/nn/layer_norm.hpp>

#include <fmt/format.h>

#include <xgrad/autograd/ops/layer_norm.hpp>

namespace xgrad::nn {

LayerNorm::LayerNorm(std::size_t normalized_shape, float eps, bool elementwise_affine)
    : Module("LayerNorm"), normalized_shape_(normalized_shape), eps_(eps) {
  if (elementwise_affine) {
    weight = register_parameter("weight", ones({normalized_shape}));
    bias = register_parameter("bias", zeros({normalized_shape}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) const { return run_hooks(layer_norm(x, weight, bias, eps_)); }

Tensor LayerNorm::forward(const Tensor& x, const Tensor& residual) const {
  return run_hooks(add_layer_norm(x, residual, weight, bias, eps_));
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("({},), eps={}, elementwise_affine={}", normalized_shape_, eps_, weight.defined());
}

}  // namespace xgrad::nn
