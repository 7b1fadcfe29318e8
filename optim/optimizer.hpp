// The optimizer base: the parameters it updates, zero_grad, step, the learning rate that
// schedulers set, and state save/restore from which a resumed run continues bit-identically.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <xgrad/autograd/tensor.hpp>
#include <xgrad/optim/state_dict.hpp>

namespace xgrad::optim {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Drops every parameter's gradient (torch's zero_grad(set_to_none=True), its default).
  void zero_grad();
  /// One update of every parameter that has a gradient; the others are left alone, as in torch.
  virtual void step() = 0;

  /// The learning rate of the next step (what schedulers read and set).
  virtual double lr() const = 0;
  virtual void set_lr(double lr) = 0;

  const std::vector<Tensor>& params() const { return params_; }
  /// "SGD", "Adam", ...: how errors name this optimizer.
  const std::string& name() const { return name_; }

  /// The hyper-parameters under their torch names ("lr", "betas.0", "weight_decay", ...) and the
  /// per-parameter state as "state.<index>.<name>" ("state.3.exp_avg", "state.3.step"), for the
  /// parameters a step has touched. Encodings: see state_dict.hpp.
  StateDict state_dict() const;
  /// Restores what state_dict() saved: hyper-parameters and per-parameter state. Every key and
  /// shape is checked against this optimizer's parameters; on any problem nothing changes and
  /// one Error lists them all.
  void load_state_dict(const StateDict& dict);

 protected:
  /// Checks the parameters: at least one, each a defined leaf, none twice.
  Optimizer(std::string name, std::vector<Tensor> params);

  /// The gradient of parameter i, or nullptr if it has none; throws if its shape is not the
  /// parameter's.
  Array* grad_of(std::size_t i) const;
  /// Throws unless `state` (named `what`) still has parameter i's shape.
  void check_state_shape(std::size_t i, const Array& state, const char* what) const;

  // What state_dict() and load_state_dict() walk; each subclass names its values once here.
  virtual void visit_hyper_parameters(StateVisitor& visitor) = 0;
  virtual bool has_state(std::size_t i) const = 0;
  /// Gives parameter i fresh (zero) state, or none.
  virtual void reset_state(std::size_t i, bool present) = 0;
  virtual void visit_state(std::size_t i, StateVisitor& visitor) = 0;
  /// Throws an Error naming the optimizer and the value if an option is out of range.
  virtual void validate() const = 0;

  std::vector<Tensor> params_;

 private:
  void visit_all(StateVisitor& visitor);
  std::string name_;
};

/// `value` is a finite number >= 0, or throws "<optimizer>: invalid <what>: <value> (expected ...)".
void check_non_negative(const std::string& optimizer, const char* what, double value);
/// `value` is in [0, 1), or throws naming the optimizer, what and the value.
void check_unit_interval(const std::string& optimizer, const char* what, double value);

}  // namespace xgrad::optim
