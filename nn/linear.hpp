// nn::Linear: y = x W^T + b.
#pragma once

#include <xgrad/core/generator.hpp>
#include <xgrad/nn/functional.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/quantized.hpp>

namespace xgrad::nn {

/// Shape: input (..., in_features) -> output (..., out_features).
/// Parameters: weight (out_features, in_features), bias (out_features), both U(-1/sqrt(in), 1/sqrt(in))
/// as PyTorch (kaiming_uniform_ with a = sqrt(5)).
class Linear : public Module, public Quantizable {
 public:
  Linear(std::size_t in_features, std::size_t out_features, bool bias = true,
         Generator& generator = default_generator());
  Tensor forward(const Tensor& x) const;
  /// activation(forward(x)), fused where functional::linear fuses it (ReLU); forward hooks see
  /// the activated output.
  Tensor forward(const Tensor& x, functional::Activation activation) const;

  /// From now on, forward without gradients runs in int8 (nn/quantized.hpp).
  void quantize_int8() override;
  bool is_quantized() const override { return int8_ != nullptr; }
  std::vector<std::pair<std::string, Int8Weight*>> int8_weights() const override {
    if (!int8_) return {};
    return {{"weight", int8_.get()}};
  }

  Tensor weight;
  Tensor bias;  // undefined without bias

 protected:
  std::string extra_repr() const override;

 private:
  std::size_t in_features_, out_features_;
  std::shared_ptr<Int8Weight> int8_;
};

}  // namespace xgrad::nn
