// nn::init: parameter initialisers with PyTorch's names and formulas (torch.nn.init), seeded.
// Each fills a tensor's value in place, outside the tape.
#pragma once

#include <string>
#include <utility>

#include <xgrad/core/generator.hpp>
#include <xgrad/autograd/tensor.hpp>

namespace xgrad::nn::init {

enum class FanMode { FanIn, FanOut };

/// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (rank >= 2).
std::pair<std::size_t, std::size_t> calculate_fan_in_and_fan_out(const Tensor& tensor);
/// The recommended gain for a nonlinearity: linear/sigmoid 1, tanh 5/3, relu sqrt 2,
/// leaky_relu sqrt(2 / (1 + slope^2)), selu 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

void uniform_(const Tensor& tensor, double low = 0.0, double high = 1.0, Generator& generator = default_generator());
void normal_(const Tensor& tensor, double mean = 0.0, double std = 1.0, Generator& generator = default_generator());
void constant_(const Tensor& tensor, float value);
void zeros_(const Tensor& tensor);
void ones_(const Tensor& tensor);
/// U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(const Tensor& tensor, double gain = 1.0, Generator& generator = default_generator());
/// N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(const Tensor& tensor, double gain = 1.0, Generator& generator = default_generator());
/// U(-bound, bound), bound = gain(nonlinearity, a) * sqrt(3 / fan). Linear's default weight
/// init is kaiming_uniform_(w, sqrt(5)), which gives bound = 1 / sqrt(fan_in).
void kaiming_uniform_(const Tensor& tensor, double a = 0.0, FanMode mode = FanMode::FanIn,
                      const std::string& nonlinearity = "leaky_relu", Generator& generator = default_generator());
/// N(0, std^2), std = gain(nonlinearity, a) / sqrt(fan).
void kaiming_normal_(const Tensor& tensor, double a = 0.0, FanMode mode = FanMode::FanIn,
                     const std::string& nonlinearity = "leaky_relu", Generator& generator = default_generator());

}  // namespace xgrad::nn::init
