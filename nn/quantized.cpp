#include <xgrad/nn/quantized.hpp>

#include <fmt/format.h>

#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad::nn {

Int8Weight::Int8Weight(Tensor weight) : weight_(std::move(weight)) {
  if (weight_.dim() != 2) {
    throw Error(fmt::format("Int8Weight: a weight must be (out, in), got {}", shape_str(weight_.shape())));
  }
  get();
}

const kernels::QuantizedWeight& Int8Weight::get() const {
  if (quantized_.values.empty() || weight_.version() != version_) {
    quantized_ = kernels::quantize_weight(weight_.value().data(), weight_.size(0), weight_.size(1));
    version_ = weight_.version();
  }
  return quantized_;
}

std::size_t Int8Weight::bytes() const {
  return quantized_.values.size() + quantized_.scales.size() * sizeof(float) + quantized_.row_sums.size() * 4;
}

std::size_t quantize_dynamic(Module& model) {
  std::size_t count = 0;
  for (const auto& [name, module] : model.named_modules()) {
    if (auto* layer = dynamic_cast<Quantizable*>(const_cast<Module*>(module))) {
      layer->quantize_int8();
      ++count;
    }
  }
  return count;
}

namespace functional {

Tensor quantized_linear(const Tensor& x, const kernels::QuantizedWeight& weight, const Tensor& bias,
                        std::size_t first, std::size_t count, Activation activation) {
  const std::size_t in = weight.cols;
  if (x.dim() < 1 || x.size(-1) != in) {
    throw Error(fmt::format("quantized_linear: x {} must end in the weight's {} input features", shape_str(x.shape()), in));
  }
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.rows)) {
    throw Error(fmt::format("quantized_linear: bias {} must be ({})", shape_str(bias.shape()), weight.rows));
  }
  const std::size_t rows = x.numel() / in;
  Shape shape = x.shape();
  shape.back() = count;
  Array y = Array::from_shape(shape);  // (..., count)
  kernels::quantized_linear(x.value().data(), rows, weight, first, count,
                            bias.defined() ? bias.value().data() + first : nullptr, y.data());
  Tensor out(std::move(y));
  if (activation == Activation::relu) return relu(out);
  if (activation == Activation::gelu) return gelu(out);
  return out;
}

}  // namespace functional

}  // namespace xgrad::nn
