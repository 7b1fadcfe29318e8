#include <xgrad/nn/feed_forward.hpp>

namespace xgrad::nn {

FeedForward::FeedForward(std::size_t d_model, std::size_t dim_feedforward, float dropout_p,
                         functional::Activation activation, Generator& generator)
    : Module("FeedForward"), activation_(activation) {
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, dim_feedforward, true, generator));
  dropout = register_module("dropout", std::make_shared<Dropout>(dropout_p, generator));
  linear2 = register_module("linear2", std::make_shared<Linear>(dim_feedforward, d_model, true, generator));
}

FeedForward::FeedForward(std::size_t d_model, std::size_t dim_feedforward, float dropout_p,
                         const std::string& activation, Generator& generator)
    : FeedForward(d_model, dim_feedforward, dropout_p, functional::activation_from_name(activation), generator) {}

Tensor FeedForward::forward(const Tensor& x) const {
  const Tensor hidden = linear1->forward(x, activation_);  // (..., d_ff)
  return run_hooks(linear2->forward(dropout->forward(hidden)));
}

std::string FeedForward::extra_repr() const { return std::string("activation=") + functional::activation_name(activation_); }

}  // namespace xgrad::nn
