// nn::Dropout: zeroes elements with probability p while training, scaling the rest by 1/(1-p).
#pragma once

#include <xgrad/core/generator.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Shape: any -> same. Identity in eval mode. Masks are drawn from `generator` (by default the
/// global one, whose state a checkpoint saves for exact resume).
class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f, Generator& generator = default_generator());
  Tensor forward(const Tensor& x) const;
  float p() const { return p_; }

 protected:
  std::string extra_repr() const override;

 private:
  float p_;
  Generator* generator_;
};

}  // namespace xgrad::nn
