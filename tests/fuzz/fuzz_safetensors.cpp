// Fuzz target: safetensors::read on arbitrary bytes (I8 widened and kept, F32 placed in given
// storage), and every tensor of what it accepts; then the same bytes as a checkpoint's state.safetensors
// (training::load_training_state).
#include "fuzz.hpp"

#include <map>
#include <string>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/nn/safetensors.hpp>
#include <xgrad/training/run_folder.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = xgrad::fuzz::scratch_file("input.safetensors", data, size);
  try {
    const xgrad::safetensors::File file = xgrad::safetensors::read(path);
    double sum = 0;  // every element of what was accepted is read (a bad span would show here)
    for (const auto& [name, array] : file.tensors()) {
      for (const float value : array) sum += value;
    }
    for (const auto& [name, array] : file.indices()) {
      for (const std::int64_t value : array) sum += static_cast<double>(value);
    }
    for (const std::string& name : file.keys()) {
      if (!file.contains(name)) __builtin_trap();
      static_cast<void>(file.dtype(name));
    }
    static_cast<void>(sum);
    xgrad::fuzz::outcome("read");
  } catch (const xgrad::Error& e) {
    xgrad::fuzz::outcome(e.what());
  }
  try {  // I8 kept as bytes: the same acceptance, each I8 tensor with as many bytes as its shape says
    const xgrad::safetensors::File file = xgrad::safetensors::read(path, xgrad::safetensors::Int8Tensors::keep);
    for (const auto& [name, tensor] : file.int8_tensors()) {
      std::size_t count = 1;
      for (const std::size_t d : tensor.shape) count *= d;
      if (count != tensor.values.size() || file.dtype(name) != xgrad::safetensors::Dtype::I8) __builtin_trap();
    }
    xgrad::fuzz::outcome("read, I8 kept");
  } catch (const xgrad::Error& e) {
    xgrad::fuzz::outcome(e.what());
  }
  try {  // F32 tensors placed in storage of exactly their size (a loader's parameters), the others read
    std::vector<std::vector<float>> storage;
    const xgrad::safetensors::File file = xgrad::safetensors::read(
        path, xgrad::safetensors::Int8Tensors::widen,
        [&](const std::vector<xgrad::safetensors::TensorInfo>& tensors, const std::map<std::string, std::string>&) {
          xgrad::safetensors::Placement placement;
          for (const auto& tensor : tensors) {
            if (tensor.dtype != xgrad::safetensors::Dtype::F32) continue;
            std::size_t count = 1;
            for (const std::size_t d : tensor.shape) count *= d;
            storage.emplace_back(count);
            placement.emplace(tensor.name, storage.back().data());
          }
          return placement;
        });
    double sum = 0;
    for (const auto& values : storage) {
      for (const float value : values) sum += value;
    }
    for (const std::string& name : file.placed()) {
      if (file.dtype(name) != xgrad::safetensors::Dtype::F32 || file.tensors().count(name)) __builtin_trap();
    }
    static_cast<void>(sum);
    xgrad::fuzz::outcome("read, F32 placed");
  } catch (const xgrad::Error& e) {
    xgrad::fuzz::outcome(e.what());
  }
  xgrad::fuzz::scratch_file("state.safetensors", data, size);
  try {
    static_cast<void>(xgrad::training::load_training_state(xgrad::fuzz::scratch_dir()));
  } catch (const xgrad::Error& e) {
    xgrad::fuzz::outcome(e.what());
  }
  return 0;
}
