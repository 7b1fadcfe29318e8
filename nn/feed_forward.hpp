// nn::FeedForward: the paper's position-wise feed-forward network, FFN(x) = W2 act(W1 x + b1) + b2.
#pragma once

#include <memory>
#include <string>

#include <xgrad/core/generator.hpp>
#include <xgrad/nn/dropout.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Shape: (..., d_model) -> (..., d_model). linear1 (d_model -> dim_feedforward), activation
/// ("relu" or "gelu"), dropout, linear2 (dim_feedforward -> d_model): the names and order of
/// torch.nn.TransformerEncoderLayer's feed-forward block.
class FeedForward : public Module {
 public:
  FeedForward(std::size_t d_model, std::size_t dim_feedforward, float dropout = 0.1f,
              const std::string& activation = "relu", Generator& generator = default_generator());
  Tensor forward(const Tensor& x) const;

  std::shared_ptr<Linear> linear1;
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Linear> linear2;

 protected:
  std::string extra_repr() const override { return "activation=" + activation_; }

 private:
  std::string activation_;
};

}  // namespace xgrad::nn
