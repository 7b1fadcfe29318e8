// One way to save and load every model of the zoo: a safetensors file of its state_dict, under
// PyTorch's dotted names, with {"format": "pt", "config": <Config::to_json()>} as metadata.
//
//   models::save(model, "model.safetensors");
//   auto model = models::load<models::Transformer>("model.safetensors");
//   auto decoder = models::load_int8<models::Transformer>("model.safetensors");  // int8 inference
//
// A model M qualifies with `using Config = ...;`, a constructor M(const Config&), and
// `const Config& config() const`, its Config having to_json() and a static from_json(text).
#pragma once

#include <memory>
#include <string>

#include <xgrad/nn/checkpoint.hpp>

namespace xgrad::models {

/// Writes the model's state_dict and its config, atomically. A quantized model (nn::quantize_dynamic)
/// is saved with its int8 weights (nn::save_quantized), which load() reads back.
template <class M>
void save(const M& model, const std::string& path) {
  if (nn::is_quantized(model)) {
    nn::save_quantized(model, path, {{"format", "pt"}, {"config", model.config().to_json()}});
    return;
  }
  nn::save(model, path, {{"format", "pt"}, {"config", model.config().to_json()}});
}

/// Builds M from the file's "config" metadata and loads its tensors strictly (every name and
/// shape must match; one xgrad::Error lists what does not).
template <class M>
std::shared_ptr<M> load(const std::string& path) {
  return nn::load_configured<M, typename M::Config>("models::load", path);
}

/// The same for a model that only decodes, its linear layers in int8: an int8 file (save() of a
/// quantized model) is read into a model built without fp32 weights, so that they are never
/// allocated (nn::Int8WeightsOnly); an fp32 file is loaded, then quantized with its fp32 weights
/// freed (nn::quantize_dynamic(model, nn::Fp32Weights::release)). Either way the result equals
/// load() followed by that quantize_dynamic call.
template <class M>
std::shared_ptr<M> load_int8(const std::string& path) {
  return nn::load_configured<M, typename M::Config>("models::load_int8", path, true);
}

}  // namespace xgrad::models
