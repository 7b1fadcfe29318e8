// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
// step for step as torch.optim.SGD.
#pragma once

#include <optional>
#include <vector>

#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {

/// SGD's options, set by chaining: `SGDOptions(0.1).momentum(0.9).nesterov(true)`.
struct SGDOptions {
  explicit SGDOptions(double lr) : lr_(lr) {}

  SGDOptions& lr(double value) { lr_ = value; return *this; }
  SGDOptions& momentum(double value) { momentum_ = value; return *this; }
  SGDOptions& dampening(double value) { dampening_ = value; return *this; }
  SGDOptions& weight_decay(double value) { weight_decay_ = value; return *this; }
  SGDOptions& nesterov(bool value) { nesterov_ = value; return *this; }
  SGDOptions& maximize(bool value) { maximize_ = value; return *this; }

  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }
  bool maximize() const { return maximize_; }

 private:
  friend class SGD;
  double lr_;
  double momentum_ = 0.0;
  double dampening_ = 0.0;
  double weight_decay_ = 0.0;
  bool nesterov_ = false;
  bool maximize_ = false;
};

/// For each parameter p with gradient g (negated if maximize), with lr, momentum mu, dampening
/// tau, weight decay lambda:
///   d = g + lambda p
///   b = d on the first step, else b = mu b + (1 - tau) d      (only if mu != 0)
///   d = d + mu b if nesterov, else d = b                      (only if mu != 0)
///   p = p - lr d
/// State: "state.<i>.momentum_buffer" (b), once a step has touched parameter i with mu != 0.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);
  /// Groups with their own lr and weight decay (the options' where unset).
  SGD(std::vector<ParamGroup> groups, SGDOptions options);

  void step() override;
  double lr() const override { return options_.lr(); }
  void set_lr(double lr) override;
  const SGDOptions& options() const { return options_; }

 protected:
  void visit_hyper_parameters(StateVisitor& visitor) override;
  bool has_state(std::size_t i) const override { return momentum_buffers_[i].has_value(); }
  void reset_state(std::size_t i, bool present) override;
  void visit_state(std::size_t i, StateVisitor& visitor) override;
  void validate() const override;

 private:
  SGDOptions options_;
  std::vector<std::optional<Array>> momentum_buffers_;  // one per parameter, each of its shape
};

}  // namespace xgrad::optim
