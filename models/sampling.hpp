// Choosing the next token from a row of logits: the one sampler every decoding strategy and
// model uses (greedy_decode's argmax, sample_decode, GPT::generate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <xgrad/core/generator.hpp>

namespace xgrad::models {

/// argmax_v logits_v, ties to the lowest id.
std::int64_t argmax(const float* logits, std::size_t vocab);

/// temperature 0 (or top_k 1): greedy, argmax. temperature > 0: a draw from
///   p_v = exp((l_v - l_max) / temperature) / Z
/// over the top_k largest logits (0: all of them), ranked by logit, ties to the lower id, a NaN
/// after every number (kernels::top_n), the weights in double. temperature must be finite and
/// >= 0 (xgrad::Error otherwise).
class Sampler {
 public:
  Sampler(float temperature, std::size_t top_k, Generator& generator);
  std::int64_t operator()(const float* logits, std::size_t vocab);

 private:
  float temperature_;
  std::size_t top_k_;
  Generator* generator_;
  std::vector<std::size_t> order_;  // (k) scratch
  std::vector<double> weights_;     // (k) scratch
};

}  // namespace xgrad::models
