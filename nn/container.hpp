// Containers: Sequential (modules applied in order) and ModuleList (an indexable list of
// submodules), registered under "0", "1", ... as in PyTorch.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

namespace detail {
/// Throws xgrad::Error: "ModuleList: index i is out of range for a list of n modules".
[[noreturn]] void throw_index_out_of_range(std::size_t index, std::size_t size);
}  // namespace detail

/// Applies its modules in order: forward(x) = m_n(...m_1(x)). Any module with a
/// `Tensor forward(const Tensor&)` can be appended.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}

  template <class M>
  Sequential& push_back(std::shared_ptr<M> module) {
    register_module(std::to_string(steps_.size()), module);
    steps_.push_back([module](const Tensor& x) { return module->forward(x); });
    return *this;
  }
  std::size_t size() const { return steps_.size(); }

  Tensor forward(const Tensor& x) const {
    Tensor h = x;
    for (const auto& step : steps_) h = step(h);
    return run_hooks(h);
  }

 private:
  std::vector<std::function<Tensor(const Tensor&)>> steps_;
};

/// An indexable list of submodules of one type, e.g. the layers of an encoder.
template <class M>
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}

  ModuleList& push_back(std::shared_ptr<M> module) {
    items_.push_back(register_module(std::to_string(items_.size()), std::move(module)));
    return *this;
  }
  std::size_t size() const { return items_.size(); }
  M& operator[](std::size_t i) const { return *at(i); }
  const std::shared_ptr<M>& at(std::size_t i) const {
    if (i >= items_.size()) detail::throw_index_out_of_range(i, items_.size());
    return items_[i];
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

}  // namespace xgrad::nn
