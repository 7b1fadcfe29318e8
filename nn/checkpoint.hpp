// Saving and loading a module's state as safetensors, under its PyTorch dotted names, so that
// PyTorch (safetensors.torch.load_file, or the reference script's reader) reads the same file.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <xgrad/core/error.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/quantized.hpp>
#include <xgrad/nn/safetensors.hpp>

namespace xgrad::nn {

/// Writes module.state_dict() (F32) and `metadata` (e.g. {"format": "pt", "config": ...}) to
/// `path`, atomically: an interrupted save leaves the previous file intact.
void save(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata = {});

/// Loads the tensors of `path` into the module (F32, F16, BF16 and F64 files are converted).
/// strict: the file's names must be exactly the module's state_dict names; one xgrad::Error
/// naming the file lists every missing, unexpected and mis-shaped tensor, and the module is left
/// as it was. Returns the metadata. F32 tensors are read straight into the parameters: loading
/// takes no memory beyond the module's own (and a converted tensor's).
std::map<std::string, std::string> load(Module& module, const std::string& path, bool strict = true);
/// For safetensors::read: checks the header's tensors against the module as load() does (throwing
/// its error, before anything is read) and places every F32 tensor in the parameter it loads.
/// After such a read, load(module, std::move(file), false) loads the tensors left (other dtypes).
safetensors::Placement place_state(Module& module, const std::vector<safetensors::TensorInfo>& tensors, bool strict,
                                   const std::string& path);
/// The placement alone, unchecked: every F32 tensor named and shaped as one of the module's. For
/// a module that is dropped if the load then fails (one built from the file's own config).
safetensors::Placement place_matching(Module& module, const std::vector<safetensors::TensorInfo>& tensors);
/// The same from a file already read.
std::map<std::string, std::string> load(Module& module, const safetensors::File& file, bool strict = true);
/// The same, taking the file's arrays rather than copying them.
std::map<std::string, std::string> load(Module& module, safetensors::File&& file, bool strict = true);

/// A model saved with its configuration as JSON in the metadata's "config" (models::save_model):
/// reads `path` once, builds M(Config::from_json(config)) from its header and loads the tensors
/// strictly, F32 ones straight into the parameters. `op` names the caller in the error for a file
/// without a config ("load_model"). int8_inference: the model only decodes, in int8; an int8
/// file is then read into a model built without fp32 weights (Int8WeightsOnly), and an fp32 file
/// is quantized once loaded, its fp32 weights freed.
template <class M, class Config>
std::shared_ptr<M> load_configured(const char* op, const std::string& path, bool int8_inference = false) {
  std::shared_ptr<M> model;
  bool quantized = false;
  const auto build = [&](const std::vector<safetensors::TensorInfo>& tensors,
                         const std::map<std::string, std::string>& metadata) {
    const auto config = metadata.find("config");
    if (config == metadata.end()) {
      throw Error(std::string(op) + ": " + path + " has no \"config\" in its metadata");
    }
    const auto quantization = metadata.find("quantization");
    quantized = quantization != metadata.end();
    if (quantized && quantization->second != "int8") {
      throw Error(std::string(op) + ": " + path + ": unknown quantization \"" + quantization->second +
                  "\" (int8 is known)");
    }
    std::optional<Int8WeightsOnly> no_fp32_weights;
    if (quantized && int8_inference) no_fp32_weights.emplace();
    model = std::make_shared<M>(Config::from_json(config->second));
    // An int8 file's other tensors are checked by load_quantized; the model is dropped if it throws.
    return quantized ? place_matching(*model, tensors) : place_state(*model, tensors, true, path);
  };
  safetensors::File file = safetensors::read(path, safetensors::Int8Tensors::keep, build);
  if (quantized) {
    load_quantized(*model, std::move(file));
    return model;
  }
  load(*model, std::move(file), false);  // what was not placed: tensors of other dtypes
  if (int8_inference) quantize_dynamic(*model, Fp32Weights::release);
  return model;
}

}  // namespace xgrad::nn
