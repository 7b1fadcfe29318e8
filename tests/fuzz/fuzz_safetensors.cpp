// Fuzz target: safetensors::read on arbitrary bytes (I8 widened and kept), and every tensor of
// what it accepts; then the same bytes as a checkpoint's state.safetensors
// (training::load_training_state).
#include "fuzz.hpp"

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
  xgrad::fuzz::scratch_file("state.safetensors", data, size);
  try {
    static_cast<void>(xgrad::training::load_training_state(xgrad::fuzz::scratch_dir()));
  } catch (const xgrad::Error& e) {
    xgrad::fuzz::outcome(e.what());
  }
  return 0;
}
