#include <xgrad/nn/linear.hpp>

#include <xgrad/autograd/tape.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/nn/functional.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

Linear::Linear(std::size_t in_features, std::size_t out_features, bool with_bias, Generator& generator)
    : Module("Linear"), in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", quantizable_weight(out_features, in_features, int8_, [&] {
                                 Tensor w = zeros({out_features, in_features});
                                 init::kaiming_uniform_(w, std::sqrt(5.0), init::FanMode::FanIn, "leaky_relu", generator);
                                 return w;
                               }));
  if (with_bias) {
    bias = register_parameter("bias", zeros({out_features}));
    const double bound = in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features)) : 0.0;
    init::uniform_(bias, -bound, bound, generator);
  }
}

Tensor Linear::forward(const Tensor& x) const { return forward(x, functional::Activation::none); }

Tensor Linear::forward(const Tensor& x, functional::Activation activation) const {
  if (int8_ && !is_grad_enabled()) {
    return run_hooks(functional::quantized_linear(x, int8_->get(), bias, 0, out_features_, activation));
  }
  if (int8_) int8_->require_fp32("Linear");
  return run_hooks(functional::linear(x, weight, bias, activation));
}

void Linear::quantize_int8() {
  if (!int8_) int8_ = std::make_shared<Int8Weight>(weight);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}{}", in_features_, out_features_, bias.defined(),
                     int8_ ? ", int8" : "");
}

}  // namespace xgrad::nn
