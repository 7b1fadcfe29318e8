// nn::Module: the base of every layer and model. Parameters, buffers and submodules are
// registered by name into named members, and named_parameters() gives PyTorch's dotted names
// ("encoder.layers.0.linear1.weight"), which are also the checkpoint names.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad::nn {

/// name -> tensor, as torch's state_dict (sorted by name).
using StateDict = std::map<std::string, Tensor>;

class Module;
/// Called with the module and its output after each forward that runs hooks.
using ForwardHook = std::function<void(const Module& module, const Tensor& output)>;

class Module {
 public:
  /// `type_name` is what printing shows, e.g. "Linear".
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_name_; }

  // --- registration (one line each, into a named member) -------------------------------------
  /// `weight = register_parameter("weight", tensor)`: a trainable leaf (requires grad).
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  /// A tensor that is part of the state but not trained (e.g. a positional table). Non-persistent
  /// buffers are left out of state_dict(), as PyTorch's persistent=False.
  Tensor register_buffer(const std::string& name, Tensor tensor, bool persistent = true);
  /// `encoder = register_module("encoder", std::make_shared<Encoder>(...))`.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // --- traversal ----------------------------------------------------------------------------
  /// Parameters in registration order, this module's first, then each child's. A tensor
  /// registered under two names (tied weights) is listed once, under its first name, as PyTorch.
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  /// This module and every descendant, with dotted names ("" for this one).
  std::vector<std::pair<std::string, const Module*>> named_modules() const;
  /// Number of parameter elements (trainable only, by default).
  std::size_t parameter_count(bool trainable_only = true) const;

  // --- mode ---------------------------------------------------------------------------------
  /// Training mode for this module and every descendant (dropout active).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad();

  // --- state --------------------------------------------------------------------------------
  /// Parameters and persistent buffers by dotted name (tied tensors under each of their names).
  /// The tensors share storage with the module.
  StateDict state_dict() const;
  /// Copies values into this module's parameters and buffers. strict: every key must match;
  /// one xgrad::Error lists every missing key, unexpected key and shape mismatch. Not strict:
  /// matching keys are loaded, the rest ignored, but a shape mismatch still throws.
  void load_state_dict(const StateDict& state, bool strict = true);
  /// What load_state_dict checks before it copies anything, from the names and shapes alone (a
  /// checkpoint's header): throws the same xgrad::Error.
  void check_state_shapes(const std::map<std::string, Shape>& shapes, bool strict = true) const;

  // --- hooks --------------------------------------------------------------------------------
  /// Registers a hook on this module's output; returns an id for remove_forward_hook.
  int register_forward_hook(ForwardHook hook);
  void remove_forward_hook(int id);

  /// A printable tree: each module with its type, its own parameters' shapes and counts.
  std::string to_string() const;

 protected:
  /// Forward implementations end with `return run_hooks(output);` so that hooks see it.
  Tensor run_hooks(Tensor output) const;
  /// A line of extra description for printing, e.g. "in_features=4, out_features=3".
  virtual std::string extra_repr() const { return ""; }

 private:
  struct Entry {
    std::string name;
    Tensor tensor;
    bool persistent = true;
  };
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  void print(std::string& out, const std::string& name, int depth) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<Entry> parameters_;
  std::vector<Entry> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<std::pair<int, ForwardHook>> hooks_;
  int next_hook_id_ = 0;
};

std::ostream& operator<<(std::ostream& out, const Module& module);

}  // namespace xgrad::nn
