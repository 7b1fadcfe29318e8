#include <xgrad/nn/init.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::nn::init {

std::pair<std::size_t, std::size_t> calculate_fan_in_and_fan_out(const Tensor& tensor) {
  const Shape shape = tensor.shape();
  if (shape.size() < 2) {
    throw Error(fmt::format("init: fan in and fan out need a tensor of rank >= 2, got shape {}", shape_str(shape)));
  }
  std::size_t receptive = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity == "conv1d" ||
      nonlinearity == "conv2d" || nonlinearity == "conv3d") {
    return 1.0;
  }
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 0.75;
  throw Error(fmt::format("init::calculate_gain: unsupported nonlinearity \"{}\"", nonlinearity));
}

void uniform_(const Tensor& tensor, double low, double high, Generator& generator) {
  if (!(low <= high)) throw Error(fmt::format("init::uniform_: expected low <= high, got {} and {}", low, high));
  for (float& v : tensor.mutable_value()) v = static_cast<float>(low + (high - low) * generator.uniform());
}

void normal_(const Tensor& tensor, double mean, double std, Generator& generator) {
  if (!(std >= 0)) throw Error(fmt::format("init::normal_: expected std >= 0, got {}", std));
  for (float& v : tensor.mutable_value()) v = static_cast<float>(mean + std * generator.normal());
}

void constant_(const Tensor& tensor, float value) { tensor.mutable_value().fill(value); }
void zeros_(const Tensor& tensor) { constant_(tensor, 0.f); }
void ones_(const Tensor& tensor) { constant_(tensor, 1.f); }

void xavier_uniform_(const Tensor& tensor, double gain, Generator& generator) {
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  uniform_(tensor, -a, a, generator);
}

void xavier_normal_(const Tensor& tensor, double gain, Generator& generator) {
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  normal_(tensor, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), generator);
}

namespace {
double kaiming_std(const Tensor& tensor, double a, FanMode mode, const std::string& nonlinearity) {
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const std::size_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  if (fan == 0) throw Error(fmt::format("init::kaiming: tensor of shape {} has a zero fan", shape_str(tensor.shape())));
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}
}  // namespace

void kaiming_uniform_(const Tensor& tensor, double a, FanMode mode, const std::string& nonlinearity,
                      Generator& generator) {
  const double bound = std::sqrt(3.0) * kaiming_std(tensor, a, mode, nonlinearity);
  uniform_(tensor, -bound, bound, generator);
}

void kaiming_normal_(const Tensor& tensor, double a, FanMode mode, const std::string& nonlinearity,
                     Generator& generator) {
  normal_(tensor, 0.0, kaiming_std(tensor, a, mode, nonlinearity), generator);
}

}  // namespace xgrad::nn::init
