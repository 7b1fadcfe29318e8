// nn::FeedForward: the paper's position-wise feed-forward network, FFN(x) = W2 act(W1 x + b1) + b2.
// The one feed-forward block of xgrad: the Transformer's encoder and decoder layers and GPT's
// blocks all compute theirs with it.
#pragma once

#include <memory>
#include <string>

#include <xgrad/core/generator.hpp>
#include <xgrad/nn/dropout.hpp>
#include <xgrad/nn/functional.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Shape: (..., d_model) -> (..., d_model).
///   forward(x) = linear2(dropout(act(linear1(x))))
/// linear1 (d_model -> dim_feedforward), activation, dropout, linear2 (dim_feedforward ->
/// d_model): the names and order of torch.nn.TransformerEncoderLayer's feed-forward block. The
/// activation is fixed when the block is built (ReLU fused into linear1's bias pass).
class FeedForward : public Module {
 public:
  FeedForward(std::size_t d_model, std::size_t dim_feedforward, float dropout = 0.1f,
              functional::Activation activation = functional::Activation::relu,
              Generator& generator = default_generator());
  /// The activation by name, "relu" or "gelu" (anything else throws xgrad::Error).
  FeedForward(std::size_t d_model, std::size_t dim_feedforward, float dropout, const std::string& activation,
              Generator& generator = default_generator());
  Tensor forward(const Tensor& x) const;
  functional::Activation activation() const { return activation_; }

  std::shared_ptr<Linear> linear1;
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Linear> linear2;

 protected:
  std::string extra_repr() const override;

 private:
  functional::Activation activation_;
};

}  // namespace xgrad::nn
