// Adam and AdamW, step for step as torch.optim.Adam and torch.optim.AdamW: the same moment
// estimates, differing only in how weight decay enters (added to the gradient, or decoupled).
#pragma once

#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {

namespace detail {
class AdamBase;

/// The settings Adam and AdamW share, set by chaining; each setter returns the concrete options
/// type, so `AdamWOptions(1e-3).betas({0.9, 0.98}).eps(1e-9)` stays an AdamWOptions.
template <typename Options>
class AdamSettings {
 public:
  Options& lr(double value) { lr_ = value; return self(); }
  Options& betas(std::tuple<double, double> value) { std::tie(beta1_, beta2_) = value; return self(); }
  Options& eps(double value) { eps_ = value; return self(); }
  Options& weight_decay(double value) { weight_decay_ = value; return self(); }
  Options& amsgrad(bool value) { amsgrad_ = value; return self(); }
  Options& maximize(bool value) { maximize_ = value; return self(); }

  double lr() const { return lr_; }
  std::tuple<double, double> betas() const { return {beta1_, beta2_}; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }
  bool maximize() const { return maximize_; }

 protected:
  AdamSettings(double lr, double weight_decay) : lr_(lr), weight_decay_(weight_decay) {}

 private:
  friend class AdamBase;
  Options& self() { return static_cast<Options&>(*this); }
  double lr_;
  double beta1_ = 0.9;
  double beta2_ = 0.999;
  double eps_ = 1e-8;
  double weight_decay_;
  bool amsgrad_ = false;
  bool maximize_ = false;
};

}  // namespace detail

/// Adam's options, set by chaining: `AdamOptions(1e-3).betas({0.9, 0.98}).eps(1e-9)`.
struct AdamOptions : detail::AdamSettings<AdamOptions> {
  explicit AdamOptions(double lr = 1e-3) : AdamSettings(lr, /*weight_decay=*/0.0) {}
};

/// AdamW's options: Adam's, with weight decay 0.01 by default (torch's).
struct AdamWOptions : detail::AdamSettings<AdamWOptions> {
  explicit AdamWOptions(double lr = 1e-3) : AdamSettings(lr, /*weight_decay=*/0.01) {}
};

/// One parameter's Adam state.
struct AdamParamState {
  std::int64_t step = 0;
  Array exp_avg;         // m, the parameter's shape
  Array exp_avg_sq;      // v
  Array max_exp_avg_sq;  // max of v over the steps (amsgrad only)
};

namespace detail {

/// Adam and AdamW: one algorithm, two ways of applying weight decay.
class AdamBase : public Optimizer {
 public:
  void step() override;
  double lr() const override { return options_.lr(); }
  void set_lr(double lr) override;
  /// The options (for AdamW, its AdamWOptions' values).
  const AdamOptions& options() const { return options_; }
  /// Parameter i's state, or nullptr before a step has touched it.
  const AdamParamState* state(std::size_t i) const { return state_[i] ? &*state_[i] : nullptr; }

 protected:
  AdamBase(std::string name, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay);
  void visit_hyper_parameters(StateVisitor& visitor) override;
  bool has_state(std::size_t i) const override { return state_[i].has_value(); }
  void reset_state(std::size_t i, bool present) override;
  void visit_state(std::size_t i, StateVisitor& visitor) override;
  void validate() const override;

 private:
  AdamOptions options_;
  bool decoupled_weight_decay_;
  std::vector<std::optional<AdamParamState>> state_;  // one per parameter
};

}  // namespace detail

/// For each parameter p with gradient g (negated if maximize), at its step t = 1, 2, ...:
///   g = g + lambda p                                  (weight decay lambda, L2 form)
///   m = beta1 m + (1 - beta1) g
///   v = beta2 v + (1 - beta2) g^2
///   v_max = max(v_max, v), used in place of v         (amsgrad)
///   p = p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// State: "state.<i>.step", ".exp_avg" (m), ".exp_avg_sq" (v), ".max_exp_avg_sq" (amsgrad).
class Adam : public detail::AdamBase {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = AdamOptions());
  /// Groups with their own lr and weight decay (the options' where unset).
  Adam(std::vector<ParamGroup> groups, AdamOptions options = AdamOptions());
};

/// Adam with decoupled weight decay (Loshchilov & Hutter): p = p (1 - lr lambda) before Adam's
/// update, whose gradient carries no decay term.
class AdamW : public detail::AdamBase {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = AdamWOptions());
  /// Groups with their own lr and weight decay, e.g. optim::weight_decay_groups(...).
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options = AdamWOptions());
};

}  // namespace xgrad::optim
