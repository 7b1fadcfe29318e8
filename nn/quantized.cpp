#include <xgrad/nn/quantized.hpp>

#include <set>

#include <fmt/format.h>

#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad::nn {

Int8Weight::Int8Weight(Tensor weight) : weight_(std::move(weight)) {
  if (weight_.dim() != 2) {
    throw Error(fmt::format("Int8Weight: a weight must be (out, in), got {}", shape_str(weight_.shape())));
  }
  rows_ = weight_.size(0);
  cols_ = weight_.size(1);
}

std::shared_ptr<Int8Weight> Int8Weight::without_fp32(Tensor weight, std::size_t in) {
  auto int8 = std::make_shared<Int8Weight>(std::move(weight));
  if (int8->cols_ != 0) {
    throw Error(fmt::format("Int8Weight::without_fp32: the weight must be (out, 0), got {}",
                            shape_str(int8->weight_.shape())));
  }
  int8->cols_ = in;
  int8->released_ = true;
  return int8;
}

const kernels::QuantizedWeight& Int8Weight::get() const {
  if (released_) {
    if (quantized_.rows != rows_ || quantized_.cols != cols_) {
      throw Error(fmt::format("Int8Weight: the weight ({}, {}) was built without fp32 values (Int8WeightsOnly) and "
                              "has no int8 values yet: load a quantized checkpoint into the model (load_quantized)",
                              rows_, cols_));
    }
    return quantized_;
  }
  if (quantized_.values.empty() || weight_.version() != version_) {
    quantized_ = kernels::quantize_weight(weight_.value().data(), rows_, cols_);
    version_ = weight_.version();
  }
  return quantized_;
}

void Int8Weight::assign(kernels::QuantizedWeight quantized) {
  if (quantized.rows != rows_ || quantized.cols != cols_ || quantized.values.size() != rows_ * cols_ ||
      quantized.scales.size() != rows_) {
    throw Error(fmt::format("Int8Weight: int8 values ({}, {}) for a weight ({}, {})", quantized.rows, quantized.cols,
                            rows_, cols_));
  }
  quantized.row_sums.assign(quantized.rows, 0);
  for (std::size_t n = 0; n < quantized.rows; ++n) {
    for (std::size_t k = 0; k < quantized.cols; ++k) quantized.row_sums[n] += quantized.values[n * quantized.cols + k];
  }
  quantized_ = std::move(quantized);
  version_ = weight_.version();
}

void Int8Weight::release() {
  if (released_) return;
  get();
  weight_.mutable_value() = Array::from_shape({rows_, 0});
  released_ = true;
}

void Int8Weight::require_fp32(const char* layer) const {
  if (!released_) return;
  throw Error(fmt::format("{}: the fp32 weight ({}, {}) was released by quantize_dynamic(model, Fp32Weights::release) "
                          "or never made (Int8WeightsOnly), so this layer runs only in int8, where no gradient is "
                          "recorded (NoGradGuard); to train or run in fp32, load the model again",
                          layer, rows_, cols_));
}

namespace {
thread_local int int8_only_depth = 0;
}  // namespace

Int8WeightsOnly::Int8WeightsOnly() { ++int8_only_depth; }
Int8WeightsOnly::~Int8WeightsOnly() { --int8_only_depth; }
bool Int8WeightsOnly::active() { return int8_only_depth > 0; }

Tensor quantizable_weight(std::size_t out, std::size_t in, std::shared_ptr<Int8Weight>& int8,
                          const std::function<Tensor()>& make) {
  if (!Int8WeightsOnly::active()) return make();
  Tensor stand_in(Array::from_shape({out, 0}));
  int8 = Int8Weight::without_fp32(stand_in, in);
  return stand_in;
}

namespace {

/// Every int8 copy of the model, by the full name of its fp32 parameter.
std::vector<std::pair<std::string, Int8Weight*>> int8_weights_of(const Module& model) {
  std::vector<std::pair<std::string, Int8Weight*>> out;
  for (const auto& [prefix, module] : model.named_modules()) {
    const auto* layer = dynamic_cast<const Quantizable*>(module);
    if (!layer) continue;
    for (const auto& [name, weight] : layer->int8_weights()) out.emplace_back(prefix.empty() ? name : prefix + "." + name, weight);
  }
  return out;
}

}  // namespace

std::size_t quantize_dynamic(Module& model, Fp32Weights fp32) {
  std::size_t count = 0;
  for (const auto& [name, module] : model.named_modules()) {
    if (auto* layer = dynamic_cast<Quantizable*>(const_cast<Module*>(module))) {
      layer->quantize_int8();
      ++count;
    }
  }
  if (fp32 == Fp32Weights::release) {
    // How many layers hold each parameter: a weight tied to another layer's stays fp32.
    std::map<const void*, std::size_t> holders;
    for (const auto& [prefix, module] : model.named_modules()) {
      for (const auto& [name, parameter] : module->named_parameters(/*recurse=*/false)) ++holders[parameter.impl()];
    }
    for (const auto& [name, weight] : int8_weights_of(model)) {
      if (holders[weight->weight().impl()] == 1) weight->release();
    }
  }
  return count;
}

bool is_quantized(const Module& model) { return !int8_weights_of(model).empty(); }

std::vector<std::string> released_weights(const Module& model) {
  std::vector<std::string> names;
  for (const auto& [name, weight] : int8_weights_of(model)) {
    if (weight->released()) names.push_back(name);
  }
  return names;
}

void save_quantized(const Module& model, const std::string& path, std::map<std::string, std::string> metadata) {
  StateDict tensors = model.state_dict();
  std::map<std::string, safetensors::Int8Tensor> values;
  for (const auto& [name, weight] : int8_weights_of(model)) {
    const kernels::QuantizedWeight& q = weight->get();
    tensors.erase(name);
    values.emplace(name + ".int8", safetensors::Int8Tensor{{q.rows, q.cols}, q.values});
    Array scales = Array::from_shape({q.rows});
    std::copy(q.scales.begin(), q.scales.end(), scales.begin());
    tensors.emplace(name + ".scale", Tensor(std::move(scales)));
  }
  metadata["quantization"] = "int8";
  safetensors::write_state(path, tensors, metadata, values);
}

namespace {

/// The int8 values of `name`: taken from `kept` (a file read with Int8Tensors::keep) or widened
/// in `file`, each checked to lie in [-127, 127].
std::vector<std::int8_t> int8_values(std::map<std::string, safetensors::Int8Tensor>& kept,
                                     const safetensors::File& file, const std::string& name, Shape& shape) {
  std::vector<std::int8_t> values;
  if (auto found = kept.find(name); found != kept.end()) {
    shape = found->second.shape;
    values = std::move(found->second.values);
  } else {
    const Indices& v = file.get_indices(name);
    shape.assign(v.shape().begin(), v.shape().end());
    values.resize(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v.data()[i] < -128 || v.data()[i] > 127) {
        throw Error(fmt::format("load_quantized: {} holds {} at flat index {}, outside [-127, 127]", name, v.data()[i], i));
      }
      values[i] = static_cast<std::int8_t>(v.data()[i]);
    }
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] == -128) {
      throw Error(fmt::format("load_quantized: {} holds -128 at flat index {}, outside [-127, 127]", name, i));
    }
  }
  return values;
}

}  // namespace

void load_quantized(Module& model, const safetensors::File& file) { load_quantized(model, safetensors::File(file)); }

void load_quantized(Module& model, safetensors::File&& file) {
  quantize_dynamic(model);
  const auto weights = int8_weights_of(model);
  const StateDict own = model.state_dict();
  StateDict dict;
  for (auto& [name, array] : std::move(file).take_tensors()) dict.emplace(name, Tensor(std::move(array)));
  // A tensor read straight into the model's parameter (models::load) stands for itself.
  for (const std::string& name : file.placed()) {
    if (const auto parameter = own.find(name); parameter != own.end()) dict.emplace(name, parameter->second);
  }
  // A weight tied to a parameter the file holds in fp32 (an output projection sharing the
  // embedding) gets that parameter's exact values, not its int8 values times their scales.
  std::set<const void*> exact;
  for (const auto& [name, tensor] : own) {
    if (dict.count(name)) exact.insert(tensor.impl());
  }
  std::map<std::string, safetensors::Int8Tensor> kept = std::move(file).take_int8_tensors();
  std::vector<kernels::QuantizedWeight> saved;
  for (const auto& [name, weight] : weights) {
    const bool has_values = kept.count(name + ".int8") || file.indices().count(name + ".int8");
    if (!has_values || !dict.count(name + ".scale")) {
      throw Error(fmt::format("load_quantized: the file has no {}.int8 and {}.scale for the quantized weight {}", name,
                              name, name));
    }
    Shape shape;
    kernels::QuantizedWeight q;
    q.values = int8_values(kept, file, name + ".int8", shape);
    const Array& scales = dict.at(name + ".scale").value();
    if (shape.size() != 2 || scales.dimension() != 1 || scales.shape()[0] != shape[0]) {
      throw Error(fmt::format("load_quantized: {}.int8 {} and {}.scale {} must be (out, in) and (out)", name,
                              shape_str(shape), name, shape_str(shape_of(scales))));
    }
    q.rows = shape[0];
    q.cols = shape[1];
    q.scales.assign(scales.begin(), scales.end());
    dict.erase(name + ".scale");
    // The parameter itself stands for its values, which are written below, once every tensor of
    // the file has been checked against the model (load_state_dict copies nothing onto itself).
    const auto parameter = own.find(name);
    if (weight->released()) {  // no fp32 values to write: the parameter stays (out, 0)
      if (weight->rows() != q.rows || weight->cols() != q.cols) {
        throw Error(fmt::format("load_quantized: {}.int8 is ({}, {}) but the model's {} is ({}, {})", name, q.rows,
                                q.cols, name, weight->rows(), weight->cols()));
      }
      dict[name] = weight->weight();
    } else if (parameter != own.end() && parameter->second.shape() == Shape{q.rows, q.cols}) {
      dict[name] = parameter->second;
    } else {
      dict[name] = Tensor(Array::from_shape({q.rows, q.cols}));  // load_state_dict names the mismatch
    }
    saved.push_back(std::move(q));
  }
  model.load_state_dict(dict);  // strict: every other tensor as in nn::load
  for (std::size_t i = 0; i < weights.size(); ++i) {
    Int8Weight& weight = *weights[i].second;
    if (!weight.released() && !exact.count(weight.weight().impl())) {
      kernels::dequantize_weight(saved[i], weight.weight().mutable_value().data());
    }
    weight.assign(std::move(saved[i]));
  }
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
                            bias.defined() ? bias.value().data() + first : nullptr, y.data(),
                            activation == Activation::relu);
  // Recorded without inputs, so without a gradient: the profiler and anomaly mode see it as an op.
  Tensor out = record(activation == Activation::relu ? "quantized_linear_relu" : "quantized_linear", std::move(y), {},
                      nullptr);
  if (activation == Activation::gelu) return gelu(out);
  return out;
}

}  // namespace functional

}  // namespace xgrad::nn
