// The optimizer base: parameter checks, zero_grad, and the state dict walk shared by every optimizer.
#include <xgrad/optim/optimizer.hpp>

#include <cmath>
#include <set>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>

namespace xgrad::optim {

Optimizer::Optimizer(std::string name, std::vector<Tensor> params)
    : Optimizer(std::move(name), std::vector<ParamGroup>{ParamGroup{std::move(params), std::nullopt, std::nullopt}}) {}

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups)
    : name_(std::move(name)), requested_(std::move(groups)) {
  // One group with the optimizer's own values is the plain case: its state dict is the old one.
  grouped_ = requested_.size() > 1 || (!requested_.empty() && (requested_[0].lr || requested_[0].weight_decay));
  for (const ParamGroup& group : requested_) {
    Group g;
    g.begin = params_.size();
    params_.insert(params_.end(), group.params.begin(), group.params.end());
    g.end = params_.size();
    groups_.push_back(g);
  }
  if (params_.empty()) throw Error(fmt::format("{}: got an empty parameter list", name_));
  std::set<const TensorImpl*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined()) throw Error(fmt::format("{}: parameter {} is undefined", name_, i));
    if (!p.is_leaf()) {
      throw Error(fmt::format("{}: parameter {} (shape {}) is not a leaf: it is the output of '{}'", name_, i,
                              shape_str(p.shape()), p.grad_fn()->name));
    }
    if (!seen.insert(p.impl()).second) {
      throw Error(fmt::format("{}: parameter {} (shape {}) appears more than once in the list", name_, i,
                              shape_str(p.shape())));
    }
  }
}

void Optimizer::resolve_groups(double lr, double weight_decay) {
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].lr = requested_[g].lr.value_or(lr);
    groups_[g].weight_decay = requested_[g].weight_decay.value_or(weight_decay);
    groups_[g].lr_scale = lr > 0 ? groups_[g].lr / lr : 1.0;
  }
  requested_.clear();
  validate_groups();
}

void Optimizer::scale_group_lrs(double lr) {
  for (Group& group : groups_) group.lr = lr * group.lr_scale;
}

void Optimizer::validate_groups() const {
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    check_non_negative(name_, fmt::format("learning rate of param group {}", g).c_str(), groups_[g].lr);
    check_non_negative(name_, fmt::format("weight_decay of param group {}", g).c_str(), groups_[g].weight_decay);
  }
}

void Optimizer::zero_grad() {
  for (const Tensor& p : params_) p.zero_grad();
}

Array* Optimizer::grad_of(std::size_t i) const {
  TensorImpl* impl = params_[i].impl();
  if (!impl->grad) return nullptr;
  if (impl->grad->shape() != impl->data->shape()) {
    throw Error(fmt::format("{}::step: parameter {} has shape {} but its gradient has shape {}", name_, i,
                            shape_str(shape_of(*impl->data)), shape_str(shape_of(*impl->grad))));
  }
  return impl->grad.get();
}

void Optimizer::check_state_shape(std::size_t i, const Array& state, const char* what) const {
  const Array& value = params_[i].value();
  if (state.shape() != value.shape()) {
    throw Error(fmt::format("{}::step: parameter {} has shape {} but its {} has shape {} (was the parameter "
                            "replaced by one of another shape?)",
                            name_, i, shape_str(shape_of(value)), what, shape_str(shape_of(state))));
  }
}

void Optimizer::visit_all(StateVisitor& visitor) {
  visitor.section("", true);
  visit_hyper_parameters(visitor);
  if (grouped_) {
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      visitor.real(fmt::format("param_groups.{}.lr", g), groups_[g].lr);
      visitor.real(fmt::format("param_groups.{}.weight_decay", g), groups_[g].weight_decay);
    }
  }
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const bool present = visitor.section(fmt::format("state.{}.", i), has_state(i));
    if (present != has_state(i)) reset_state(i, present);
    if (present) visit_state(i, visitor);
  }
}

StateDict Optimizer::state_dict() const {
  StateDict dict;
  StateWriter writer(dict);
  // The writer only reads what it visits.
  const_cast<Optimizer*>(this)->visit_all(writer);
  return dict;
}

void Optimizer::load_state_dict(const StateDict& dict) {
  load_all_or_nothing(fmt::format("{}::load_state_dict ({} parameters)", name_, params_.size()), dict,
                      [this](StateVisitor& visitor) { visit_all(visitor); }, [this] { validate(); });
}

std::vector<ParamGroup> weight_decay_groups(const std::vector<std::pair<std::string, Tensor>>& named_parameters,
                                            double weight_decay) {
  std::vector<ParamGroup> groups(2);
  groups[0].weight_decay = weight_decay;
  groups[1].weight_decay = 0.0;
  for (const auto& [name, p] : named_parameters) groups[p.dim() >= 2 ? 0 : 1].params.push_back(p);
  return groups;
}

void check_non_negative(const std::string& optimizer, const char* what, double value) {
  if (!(value >= 0.0) || !std::isfinite(value)) {
    throw Error(fmt::format("{}: invalid {}: {} (expected a finite value >= 0)", optimizer, what, value));
  }
}

void check_unit_interval(const std::string& optimizer, const char* what, double value) {
  if (!(value >= 0.0 && value < 1.0)) {
    throw Error(fmt::format("{}: invalid {}: {} (expected a value in [0, 1))", optimizer, what, value));
  }
}

}  // namespace xgrad::optim
