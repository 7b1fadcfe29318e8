#include <xgrad/nn/dropout.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/ops/dropout.hpp>

namespace xgrad::nn {

Dropout::Dropout(float p, Generator& generator) : Module("Dropout"), p_(p), generator_(&generator) {
  if (!(p >= 0.f && p <= 1.f)) throw Error(fmt::format("Dropout: p must be in [0, 1], got {}", p));
}

Tensor Dropout::forward(const Tensor& x) const { return run_hooks(dropout(x, p_, is_training(), *generator_)); }

std::string Dropout::extra_repr() const { return fmt::format("p={}", p_); }

}  // namespace xgrad::nn
