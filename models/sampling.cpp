#include <xgrad/models/sampling.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/kernels/top_n.hpp>

namespace xgrad::models {

std::int64_t argmax(const float* logits, std::size_t vocab) {
  return static_cast<std::int64_t>(std::max_element(logits, logits + vocab) - logits);
}

Sampler::Sampler(float temperature, std::size_t top_k, Generator& generator)
    : temperature_(temperature), top_k_(top_k), generator_(&generator) {
  if (!(temperature >= 0.f) || !std::isfinite(temperature)) {
    throw Error(fmt::format("Sampler: temperature must be finite and >= 0, got {}", temperature));
  }
}

std::int64_t Sampler::operator()(const float* logits, std::size_t vocab) {
  if (temperature_ == 0.f || top_k_ == 1) return argmax(logits, vocab);
  const std::size_t k = top_k_ == 0 ? vocab : std::min(top_k_, vocab);
  kernels::top_n(logits, vocab, k, order_);
  weights_.resize(k);
  double total = 0;
  for (std::size_t i = 0; i < k; ++i) {
    weights_[i] = std::exp((static_cast<double>(logits[order_[i]]) - logits[order_[0]]) / temperature_);
    total += weights_[i];
  }
  double u = generator_->uniform() * total;
  for (std::size_t i = 0; i < k; ++i) {
    u -= weights_[i];
    if (u < 0) return static_cast<std::int64_t>(order_[i]);
  }
  return static_cast<std::int64_t>(order_[k - 1]);
}

}  // namespace xgrad::models
