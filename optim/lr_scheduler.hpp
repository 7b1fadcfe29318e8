// Learning-rate schedules, as torch.optim.lr_scheduler: constructing a scheduler sets the lr of
// the optimizer's first step; each step(), called after optimizer.step(), sets the next one.
//
// Epochs: last_epoch() is 0 after construction and grows by one per step(); the lr it sets is
// the one used by optimizer step number last_epoch() + 1 (counting steps from 1).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <xgrad/optim/optimizer.hpp>
#include <xgrad/optim/state_dict.hpp>

namespace xgrad::optim {

/// The base of every schedule. It holds a reference to its optimizer, which must outlive it.
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Moves to the next epoch and sets the optimizer's lr for it.
  void step();
  /// The lr this scheduler last set.
  double get_last_lr() const { return last_lr_; }
  /// 0 after construction, +1 per step().
  std::int64_t last_epoch() const { return last_epoch_; }
  /// Calls of step(), counting the one construction makes (torch's _step_count).
  std::int64_t step_count() const { return step_count_; }
  /// The optimizer's lr when the scheduler was built (torch's initial_lr).
  double base_lr() const { return base_lr_; }
  const std::string& name() const { return name_; }

  /// "base_lr", "last_epoch", "step_count", "last_lr" and the schedule's own settings under
  /// their torch names. Encodings: see state_dict.hpp.
  StateDict state_dict() const;
  /// Restores what state_dict() saved and sets the optimizer's lr to the saved last lr, so the
  /// order of loading optimizer and scheduler does not matter. All or nothing: on any problem
  /// nothing changes and one Error lists them all.
  void load_state_dict(const StateDict& dict);

 protected:
  LRScheduler(std::string name, Optimizer& optimizer);
  /// What every subclass constructor ends with: validates its settings, then moves to epoch 0
  /// and sets that epoch's lr (torch's _initial_step).
  void initial_step();

  /// The lr for epoch last_epoch(), given the optimizer's current lr (torch's chainable get_lr).
  virtual double get_lr() = 0;
  /// The schedule's own settings, for the state dict.
  virtual void visit_settings(StateVisitor& visitor) {}
  /// Throws an Error naming the scheduler and the value if a setting is out of range.
  virtual void validate() const {}

  Optimizer& optimizer_;
  double base_lr_;

 private:
  void visit_all(StateVisitor& visitor);
  std::string name_;
  std::int64_t last_epoch_ = -1;
  std::int64_t step_count_ = 0;
  double last_lr_ = 0.0;
};

/// lr = base_lr * lambda(epoch). The function is not part of the state dict.
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(Optimizer& optimizer, std::function<double(std::int64_t epoch)> lr_lambda);

 protected:
  double get_lr() override;

 private:
  std::function<double(std::int64_t)> lr_lambda_;
};

/// lr multiplied by gamma every step_size epochs: base_lr * gamma^floor(epoch / step_size), computed
/// as torch does, one multiplication at each multiple of step_size.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

 protected:
  double get_lr() override;
  void visit_settings(StateVisitor& visitor) override;
  void validate() const override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

/// lr = base_lr * factor for epochs [0, total_iters), then base_lr (torch's ConstantLR, computed
/// as torch does: times factor at epoch 0, times 1/factor at epoch total_iters).
/// ConstantLR(optimizer, 1.0) keeps the lr fixed. factor in (0, 1], total_iters >= 1.
class ConstantLR : public LRScheduler {
 public:
  ConstantLR(Optimizer& optimizer, double factor = 1.0 / 3, std::int64_t total_iters = 5);

 protected:
  double get_lr() override;
  void visit_settings(StateVisitor& visitor) override;
  void validate() const override;

 private:
  double factor_;
  std::int64_t total_iters_;
};

/// The Transformer paper's schedule ("Attention Is All You Need", 5.3), often called Noam:
///   lr = factor * d_model^-0.5 * min(s^-0.5, s * warmup_steps^-1.5),   s = last_epoch + 1,
/// a linear warmup to its peak factor * (d_model * warmup_steps)^-0.5 at s = warmup_steps, then
/// decay as 1/sqrt(s). The optimizer's own lr is replaced, not scaled (with the paper's
/// optimizer, lr = 1 before the scheduler).
/// Counting: s is the number of the optimizer step the lr is for, 1 on the first. Counting from
/// 0 would give the first step lr 0 (s * ...) and an infinite s^-0.5, which is why the usual
/// LambdaLR recipes special-case step 0; counting from 1 makes the first lr
/// factor * d_model^-0.5 * warmup_steps^-1.5 and needs no special case.
class NoamLR : public LRScheduler {
 public:
  NoamLR(Optimizer& optimizer, std::int64_t d_model, std::int64_t warmup_steps, double factor = 1.0);

 protected:
  double get_lr() override;
  void visit_settings(StateVisitor& visitor) override;
  void validate() const override;

 private:
  std::int64_t d_model_;
  std::int64_t warmup_steps_;
  double factor_;
};

/// Linear warmup to the optimizer's lr (base_lr), then cosine decay to min_lr, with s = last_epoch
/// + 1 the number of the optimizer step the lr is for (1 on the first, as NoamLR):
///   s <= warmup_steps:  lr = base_lr * s / warmup_steps
///   after:              lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2,
///                       progress = min(1, (s - warmup_steps) / (total_steps - warmup_steps))
/// so step warmup_steps runs at base_lr and step total_steps (and every later one) at min_lr.
/// 0 <= warmup_steps < total_steps, 0 <= min_lr <= base_lr.
class WarmupCosineLR : public LRScheduler {
 public:
  WarmupCosineLR(Optimizer& optimizer, std::int64_t warmup_steps, std::int64_t total_steps, double min_lr = 0.0);

 protected:
  double get_lr() override;
  void visit_settings(StateVisitor& visitor) override;
  void validate() const override;

 private:
  std::int64_t warmup_steps_;
  std::int64_t total_steps_;
  double min_lr_;
};

}  // namespace xgrad::optim
