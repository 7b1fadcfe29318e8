// Saving and loading a module's state as safetensors, under its PyTorch dotted names, so that
// PyTorch (safetensors.torch.load_file, or the reference script's reader) reads the same file.
#pragma once

#include <map>
#include <string>

#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Writes module.state_dict() (F32) and `metadata` (e.g. {"format": "pt", "config": ...}) to
/// `path`, atomically: an interrupted save leaves the previous file intact.
void save(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata = {});

/// Loads the tensors of `path` into the module (F32, F16, BF16 and F64 files are converted).
/// strict: the file's names must be exactly the module's state_dict names; one xgrad::Error
/// naming the file lists every missing, unexpected and mis-shaped tensor. Returns the metadata.
std::map<std::string, std::string> load(Module& module, const std::string& path, bool strict = true);

}  // namespace xgrad::nn
