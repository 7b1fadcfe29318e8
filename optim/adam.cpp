// Adam's and AdamW's step: per parameter, the bias corrections of its step count, then one fused
// pass over its contiguous data (kernels/optim) in the arithmetic order of torch's single-tensor
// implementation (torch 1.13, _single_tensor_adam[w]).
#include <xgrad/optim/adam.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/kernels/optim.hpp>

namespace xgrad::optim {
namespace detail {

AdamBase::AdamBase(std::string name, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(std::move(name), std::move(groups)),
      options_(options),
      decoupled_weight_decay_(decoupled_weight_decay),
      state_(params_.size()) {
  validate();
  resolve_groups(options_.lr_, options_.weight_decay_);
}

void AdamBase::validate() const {
  check_non_negative(name(), "learning rate", options_.lr_);
  check_non_negative(name(), "epsilon value", options_.eps_);
  check_unit_interval(name(), "beta parameter at index 0", options_.beta1_);
  check_unit_interval(name(), "beta parameter at index 1", options_.beta2_);
  check_non_negative(name(), "weight_decay value", options_.weight_decay_);
  validate_groups();
}

void AdamBase::set_lr(double lr) {
  check_non_negative(name(), "learning rate", lr);
  options_.lr_ = lr;
  scale_group_lrs(lr);
}

void AdamBase::step() {
  // Scalars enter the float arithmetic as torch's kernels take them: cast to float once.
  const float beta1 = static_cast<float>(options_.beta1_);
  const float beta2 = static_cast<float>(options_.beta2_);
  const float one_minus_beta1 = static_cast<float>(1.0 - options_.beta1_);
  const float one_minus_beta2 = static_cast<float>(1.0 - options_.beta2_);
  const float eps = static_cast<float>(options_.eps_);
  const float sign = options_.maximize_ ? -1.f : 1.f;  // maximize: step along +g
  const bool amsgrad = options_.amsgrad_;

  for (const Group& group : groups_) {
    const double lr = group.lr;
    const float weight_decay = static_cast<float>(group.weight_decay);
    // AdamW: p (1 - lr lambda); Adam: p * 1, exact.
    const float shrink = decoupled_weight_decay_ ? static_cast<float>(1.0 - lr * group.weight_decay) : 1.f;
    const bool coupled_decay = !decoupled_weight_decay_ && group.weight_decay != 0.0;
    for (std::size_t i = group.begin; i < group.end; ++i) {
      Array* grad = grad_of(i);
      if (!grad) continue;
      Array& value = params_[i].mutable_value();
      if (!state_[i]) reset_state(i, true);
      AdamParamState& state = *state_[i];
      check_state_shape(i, state.exp_avg, "exp_avg");
      check_state_shape(i, state.exp_avg_sq, "exp_avg_sq");
      if (amsgrad) check_state_shape(i, state.max_exp_avg_sq, "max_exp_avg_sq");

      state.step += 1;
      const double t = static_cast<double>(state.step);
      const double bias_correction1 = 1.0 - std::pow(options_.beta1_, t);
      const double bias_correction2 = 1.0 - std::pow(options_.beta2_, t);
      const float neg_step_size = static_cast<float>(-(lr / bias_correction1));
      const float bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));

      const kernels::AdamConstants constants{sign, shrink, weight_decay, beta1, one_minus_beta1, beta2,
                                             one_minus_beta2, bias_correction2_sqrt, eps, neg_step_size};
      kernels::adam_update(value.data(), grad->data(), state.exp_avg.data(), state.exp_avg_sq.data(),
                           amsgrad ? state.max_exp_avg_sq.data() : nullptr, value.size(), constants, amsgrad,
                           coupled_decay);
    }
  }
}

void AdamBase::visit_hyper_parameters(StateVisitor& visitor) {
  visitor.real("lr", options_.lr_);
  visitor.real("betas.0", options_.beta1_);
  visitor.real("betas.1", options_.beta2_);
  visitor.real("eps", options_.eps_);
  visitor.real("weight_decay", options_.weight_decay_);
  visitor.flag("amsgrad", options_.amsgrad_);
  visitor.flag("maximize", options_.maximize_);
}

void AdamBase::reset_state(std::size_t i, bool present) {
  if (!present) {
    state_[i].reset();
    return;
  }
  const auto& shape = params_[i].value().shape();
  AdamParamState state;
  state.exp_avg = xt::zeros<float>(shape);
  state.exp_avg_sq = xt::zeros<float>(shape);
  if (options_.amsgrad_) state.max_exp_avg_sq = xt::zeros<float>(shape);
  state_[i] = std::move(state);
}

void AdamBase::visit_state(std::size_t i, StateVisitor& visitor) {
  AdamParamState& state = *state_[i];
  const Shape shape = params_[i].shape();
  visitor.count("step", state.step);
  visitor.buffer("exp_avg", state.exp_avg, shape);
  visitor.buffer("exp_avg_sq", state.exp_avg_sq, shape);
  if (options_.amsgrad_) visitor.buffer("max_exp_avg_sq", state.max_exp_avg_sq, shape);
}

}  // namespace detail

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params), std::nullopt, std::nullopt}}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : AdamBase("Adam", std::move(groups), options, /*decoupled_weight_decay=*/false) {}

namespace {
AdamOptions as_adam_options(const AdamWOptions& options) {
  return AdamOptions(options.lr())
      .betas(options.betas())
      .eps(options.eps())
      .weight_decay(options.weight_decay())
      .amsgrad(options.amsgrad())
      .maximize(options.maximize());
}
}  // namespace

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(std::vector<ParamGroup>{ParamGroup{std::move(params), std::nullopt, std::nullopt}}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : AdamBase("AdamW", std::move(groups), as_adam_options(options), /*decoupled_weight_decay=*/true) {}

}  // namespace xgrad::optim
