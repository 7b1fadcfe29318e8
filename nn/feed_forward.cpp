#include <xgrad/nn/feed_forward.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>

namespace xgrad::nn {

FeedForward::FeedForward(std::size_t d_model, std::size_t dim_feedforward, float dropout_p,
                         const std::string& activation, Generator& generator)
    : Module("FeedForward"), activation_(activation) {
  if (activation != "relu" && activation != "gelu") {
    throw Error(fmt::format("FeedForward: activation must be \"relu\" or \"gelu\", got \"{}\"", activation));
  }
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, dim_feedforward, true, generator));
  dropout = register_module("dropout", std::make_shared<Dropout>(dropout_p, generator));
  linear2 = register_module("linear2", std::make_shared<Linear>(dim_feedforward, d_model, true, generator));
}

Tensor FeedForward::forward(const Tensor& x) const {
  Tensor hidden = linear1->forward(x);  // (..., d_ff)
  hidden = activation_ == "relu" ? relu(hidden) : gelu(hidden);
  return run_hooks(linear2->forward(dropout->forward(hidden)));
}

}  // namespace xgrad::nn
