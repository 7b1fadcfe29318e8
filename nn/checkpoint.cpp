#include <xgrad/nn/checkpoint.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/nn/quantized.hpp>
#include <xgrad/nn/safetensors.hpp>

namespace xgrad::nn {

void save(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata) {
  const std::vector<std::string> released = released_weights(module);
  if (!released.empty()) {
    throw Error(fmt::format("nn::save: '{}': {} holds int8 values only (quantize_dynamic released its fp32 weight); "
                            "save it with nn::save_quantized (models::save does)",
                            path, released.front()));
  }
  safetensors::write_state(path, module.state_dict(), metadata);
}

safetensors::Placement place_state(Module& module, const std::vector<safetensors::TensorInfo>& tensors, bool strict,
                                   const std::string& path) {
  std::string integers;
  std::map<std::string, Shape> shapes;
  for (const safetensors::TensorInfo& tensor : tensors) {
    if (safetensors::is_floating_point(tensor.dtype)) shapes.emplace(tensor.name, tensor.shape);
    else integers += (integers.empty() ? "" : ", ") + tensor.name;
  }
  if (strict && !integers.empty()) {
    throw Error(fmt::format("nn::load: '{}' holds integer tensors where parameters are expected: {}", path, integers));
  }
  try {
    module.check_state_shapes(shapes, strict);
  } catch (const Error& e) {
    throw Error(fmt::format("nn::load: '{}': {}", path, e.what()));
  }
  return place_matching(module, tensors);
}

safetensors::Placement place_matching(Module& module, const std::vector<safetensors::TensorInfo>& tensors) {
  const StateDict own = module.state_dict();
  safetensors::Placement placement;
  for (const safetensors::TensorInfo& tensor : tensors) {
    const auto parameter = own.find(tensor.name);
    if (tensor.dtype == safetensors::Dtype::F32 && parameter != own.end() && parameter->second.shape() == tensor.shape &&
        parameter->second.numel() > 0) {
      placement.emplace(tensor.name, parameter->second.mutable_value().data());
    }
  }
  return placement;
}

std::map<std::string, std::string> load(Module& module, const std::string& path, bool strict) {
  safetensors::File file = safetensors::read(
      path, safetensors::Int8Tensors::widen,
      [&](const std::vector<safetensors::TensorInfo>& tensors, const std::map<std::string, std::string>&) {
        return place_state(module, tensors, strict, path);
      });
  return load(module, std::move(file), false);  // what was not placed: tensors of other dtypes
}

std::map<std::string, std::string> load(Module& module, const safetensors::File& file, bool strict) {
  return load(module, safetensors::File(file), strict);
}

std::map<std::string, std::string> load(Module& module, safetensors::File&& file, bool strict) {
  const std::string path = file.path();
  const std::map<std::string, std::string> metadata = file.metadata();
  std::string names;
  for (const std::string& name : file.keys()) {
    if (!safetensors::is_floating_point(file.dtype(name))) names += (names.empty() ? "" : ", ") + name;
  }
  if (strict && !names.empty()) {
    throw Error(fmt::format("nn::load: '{}' holds integer tensors where parameters are expected: {}", path, names));
  }
  StateDict state;
  for (auto& [name, array] : std::move(file).take_tensors()) state.emplace(name, Tensor(std::move(array)));
  try {
    module.load_state_dict(state, strict);
  } catch (const Error& e) {
    throw Error(fmt::format("nn::load: '{}': {}", path, e.what()));
  }
  return metadata;
}

}  // namespace xgrad::nn
