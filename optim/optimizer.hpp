// The optimizer base: the parameters it updates, zero_grad, step, the learning rate that
// schedulers set, and state save/restore from which a resumed run continues bit-identically.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/autograd/tensor.hpp>
#include <xgrad/optim/state_dict.hpp>

namespace xgrad::optim {

/// Parameters that share a learning rate and a weight decay (torch's param_groups). An unset
/// value is the optimizer's; a group's learning rate follows the schedule in proportion to it
/// (a group at twice the optimizer's rate stays at twice whatever the scheduler sets).
struct ParamGroup {
  std::vector<Tensor> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

/// The usual split (GPT-2, BERT): weight decay for the matrices (rank >= 2: linear weights,
/// embeddings), none for biases, layer norms' gains and other vectors. Group 0 decays, group 1
/// does not; names are only for the caller's convenience (model.named_parameters()).
std::vector<ParamGroup> weight_decay_groups(const std::vector<std::pair<std::string, Tensor>>& named_parameters,
                                            double weight_decay);

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
  /// The groups, in order; a single group holds every parameter unless groups were given.
  std::size_t num_param_groups() const { return groups_.size(); }
  double group_lr(std::size_t group) const { return groups_.at(group).lr; }
  double group_weight_decay(std::size_t group) const { return groups_.at(group).weight_decay; }
  /// "SGD", "Adam", ...: how errors name this optimizer.
  const std::string& name() const { return name_; }

  /// The hyper-parameters under their torch names ("lr", "betas.0", "weight_decay", ...), with
  /// several groups each group's "param_groups.<g>.lr" and ".weight_decay", and the
  /// per-parameter state as "state.<index>.<name>" ("state.3.exp_avg", "state.3.step"), for the
  /// parameters a step has touched, indexed across the groups in order. Encodings: state_dict.hpp.
  StateDict state_dict() const;
  /// Restores what state_dict() saved: hyper-parameters and per-parameter state. Every key and
  /// shape is checked against this optimizer's parameters; on any problem nothing changes and
  /// one Error lists them all.
  void load_state_dict(const StateDict& dict);

 protected:
  /// Checks the parameters: at least one, each a defined leaf, none twice.
  Optimizer(std::string name, std::vector<Tensor> params);
  Optimizer(std::string name, std::vector<ParamGroup> groups);

  /// One group's parameters [begin, end) of params_, and its values.
  struct Group {
    std::size_t begin = 0, end = 0;
    double lr = 0, weight_decay = 0;
    double lr_scale = 1;  // lr / the optimizer's lr, kept as the schedule moves it
  };
  /// Gives each group the optimizer's lr and weight decay where it set none (subclass
  /// constructors call it with their options).
  void resolve_groups(double lr, double weight_decay);
  /// set_lr: every group's lr becomes lr times its scale.
  void scale_group_lrs(double lr);
  /// Throws unless every group's lr and weight decay are finite and >= 0.
  void validate_groups() const;

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
  std::vector<Group> groups_;

 private:
  void visit_all(StateVisitor& visitor);
  std::string name_;
  std::vector<ParamGroup> requested_;  // the groups' own values, until resolve_groups
  bool grouped_ = false;               // groups of their own: the state dict names them
};

/// `value` is a finite number >= 0, or throws "<optimizer>: invalid <what>: <value> (expected ...)".
void check_non_negative(const std::string& optimizer, const char* what, double value);
/// `value` is in [0, 1), or throws naming the optimizer, what and the value.
void check_unit_interval(const std::string& optimizer, const char* what, double value);

}  // namespace xgrad::optim
