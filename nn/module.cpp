#include <xgrad/nn/module.hpp>

#include <algorithm>
#include <optional>
#include <ostream>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>

namespace xgrad::nn {

void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw Error(fmt::format("{}::register_{}: name \"{}\" must be non-empty and contain no '.'", type_name_, what,
                            name));
  }
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) {
      if constexpr (std::is_same_v<std::decay_t<decltype(e)>, Entry>) return e.name == name;
      else return e.first == name;
    });
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_)) {
    throw Error(fmt::format("{}::register_{}: the name \"{}\" is already registered", type_name_, what, name));
  }
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "parameter");
  if (!tensor.defined()) throw Error(fmt::format("{}::register_parameter: \"{}\" is undefined", type_name_, name));
  if (!tensor.is_leaf()) tensor = tensor.detach();
  tensor.set_requires_grad(requires_grad);
  parameters_.push_back({name, tensor, true});
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor, bool persistent) {
  check_new_name(name, "buffer");
  if (!tensor.defined()) throw Error(fmt::format("{}::register_buffer: \"{}\" is undefined", type_name_, name));
  buffers_.push_back({name, tensor.detach(), persistent});
  return buffers_.back().tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  if (!module) throw Error(fmt::format("{}::register_module: \"{}\" is null", type_name_, name));
  children_.emplace_back(name, std::move(module));
}

namespace {
template <class Collect>
void walk(const Module& root, bool recurse, Collect collect) {
  collect("", root);
  if (!recurse) return;
  std::vector<std::pair<std::string, const Module*>> stack;
  for (auto it = root.named_children().rbegin(); it != root.named_children().rend(); ++it) {
    stack.emplace_back(it->first, it->second.get());
  }
  while (!stack.empty()) {
    auto [prefix, module] = stack.back();
    stack.pop_back();
    collect(prefix + ".", *module);
    for (auto it = module->named_children().rbegin(); it != module->named_children().rend(); ++it) {
      stack.emplace_back(prefix + "." + it->first, it->second.get());
    }
  }
}
}  // namespace

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out;
  walk(*this, true, [&](const std::string& prefix, const Module& m) {
    out.emplace_back(prefix.empty() ? prefix : prefix.substr(0, prefix.size() - 1), &m);
  });
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  std::vector<const TensorImpl*> seen;
  walk(*this, recurse, [&](const std::string& prefix, const Module& m) {
    for (const Entry& e : m.parameters_) {
      if (std::find(seen.begin(), seen.end(), e.tensor.impl()) != seen.end()) continue;
      seen.push_back(e.tensor.impl());
      out.emplace_back(prefix + e.name, e.tensor);
    }
  });
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  walk(*this, recurse, [&](const std::string& prefix, const Module& m) {
    for (const Entry& e : m.buffers_) out.emplace_back(prefix + e.name, e.tensor);
  });
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters(recurse)) out.push_back(tensor);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_buffers(recurse)) out.push_back(tensor);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& [name, child] : children_) out.push_back(child);
  return out;
}

std::size_t Module::parameter_count(bool trainable_only) const {
  std::size_t n = 0;
  for (auto& [name, tensor] : named_parameters()) {
    if (!trainable_only || tensor.requires_grad()) n += tensor.numel();
  }
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.zero_grad();
}

StateDict Module::state_dict() const {
  StateDict state;
  walk(*this, true, [&](const std::string& prefix, const Module& m) {
    for (const Entry& e : m.parameters_) state.emplace(prefix + e.name, e.tensor);
    for (const Entry& e : m.buffers_) {
      if (e.persistent) state.emplace(prefix + e.name, e.tensor);
    }
  });
  return state;
}

namespace {

/// load_state_dict's check of a state's names and shapes against the module's own state (a
/// shape of nullopt: an undefined tensor).
void check_shapes(const std::string& type_name, const StateDict& own,
                  const std::map<std::string, std::optional<Shape>>& shapes, bool strict) {
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, tensor] : own) {
    auto it = shapes.find(name);
    if (it == shapes.end()) {
      missing.push_back(name);
    } else if (!it->second || *it->second != tensor.shape()) {
      mismatched.push_back(fmt::format("{}: expected shape {}, got {}", name, shape_str(tensor.shape()),
                                       it->second ? shape_str(*it->second) : "undefined"));
    }
  }
  for (const auto& [name, shape] : shapes) {
    if (!own.count(name)) unexpected.push_back(name);
  }
  if (!mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
    std::string message = fmt::format("{}::load_state_dict: the state does not match the module", type_name);
    if (strict && !missing.empty()) message += fmt::format("\n  missing keys: {}", fmt::join(missing, ", "));
    if (strict && !unexpected.empty()) message += fmt::format("\n  unexpected keys: {}", fmt::join(unexpected, ", "));
    if (!mismatched.empty()) message += fmt::format("\n  shape mismatches: {}", fmt::join(mismatched, "; "));
    throw Error(message);
  }
}

}  // namespace

void Module::check_state_shapes(const std::map<std::string, Shape>& shapes, bool strict) const {
  std::map<std::string, std::optional<Shape>> known;
  for (const auto& [name, shape] : shapes) known.emplace(name, shape);
  check_shapes(type_name_, state_dict(), known, strict);
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  std::map<std::string, std::optional<Shape>> shapes;
  for (const auto& [name, tensor] : state) {
    shapes.emplace(name, tensor.defined() ? std::optional<Shape>(tensor.shape()) : std::nullopt);
  }
  const StateDict own = state_dict();
  check_shapes(type_name_, own, shapes, strict);
  NoGradGuard no_grad;
  for (const auto& [name, tensor] : own) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    Array& target = tensor.mutable_value();
    const Array& source = it->second.value();
    if (&target != &source) std::copy(source.begin(), source.end(), target.begin());
  }
}

int Module::register_forward_hook(ForwardHook hook) {
  hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

void Module::remove_forward_hook(int id) {
  hooks_.erase(std::remove_if(hooks_.begin(), hooks_.end(), [&](const auto& h) { return h.first == id; }),
               hooks_.end());
}

Tensor Module::run_hooks(Tensor output) const {
  for (const auto& [id, hook] : hooks_) hook(*this, output);
  return output;
}

void Module::print(std::string& out, const std::string& name, int depth) const {
  const std::string indent(2 * depth, ' ');
  std::string own;
  std::size_t own_count = 0;
  for (const Entry& e : parameters_) {
    own += fmt::format("{}{}, ", e.name, shape_str(e.tensor.shape()));
    own_count += e.tensor.numel();
  }
  const std::string extra = extra_repr();
  out += fmt::format("{}{}{}{}", indent, name.empty() ? "" : "(" + name + "): ", type_name_,
                     extra.empty() ? "" : "(" + extra + ")");
  if (own_count) out += fmt::format("  [{}{} parameters]", own, own_count);
  out += "\n";
  for (const auto& [child_name, child] : children_) child->print(out, child_name, depth + 1);
  if (depth == 0) {
    out += fmt::format("total: {} trainable parameters ({} in all)\n", parameter_count(true), parameter_count(false));
  }
}

std::string Module::to_string() const {
  std::string out;
  print(out, "", 0);
  return out;
}

std::ostream& operator<<(std::ostream& out, const Module& module) { return out << module.to_string(); }

}  // namespace xgrad::nn
