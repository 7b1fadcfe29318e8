// Learning-rate schedules: the epoch counting shared by all, and each schedule's formula.
#include <xgrad/optim/lr_scheduler.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::optim {
namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

LRScheduler::LRScheduler(std::string name, Optimizer& optimizer)
    : optimizer_(optimizer), base_lr_(optimizer.lr()), name_(std::move(name)) {}

void LRScheduler::initial_step() {
  validate();
  step();
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  const double lr = get_lr();
  optimizer_.set_lr(lr);
  last_lr_ = lr;
}

void LRScheduler::visit_all(StateVisitor& visitor) {
  visitor.section("", true);
  visitor.real("base_lr", base_lr_);
  visitor.count("last_epoch", last_epoch_);
  visitor.count("step_count", step_count_);
  visitor.real("last_lr", last_lr_);
  visit_settings(visitor);
}

StateDict LRScheduler::state_dict() const {
  StateDict dict;
  StateWriter writer(dict);
  // The writer only reads what it visits.
  const_cast<LRScheduler*>(this)->visit_all(writer);
  return dict;
}

void LRScheduler::load_state_dict(const StateDict& dict) {
  load_all_or_nothing(fmt::format("{}::load_state_dict", name_), dict,
                      [this](StateVisitor& visitor) { visit_all(visitor); },
                      [this] {
                        check_non_negative(name_, "last_lr", last_lr_);
                        check_non_negative(name_, "base_lr", base_lr_);
                        validate();
                      });
  optimizer_.set_lr(last_lr_);
}

// --- LambdaLR --------------------------------------------------------------------------------------

LambdaLR::LambdaLR(Optimizer& optimizer, std::function<double(std::int64_t)> lr_lambda)
    : LRScheduler("LambdaLR", optimizer), lr_lambda_(std::move(lr_lambda)) {
  if (!lr_lambda_) throw Error("LambdaLR: lr_lambda is empty");
  initial_step();
}

double LambdaLR::get_lr() { return base_lr_ * lr_lambda_(last_epoch()); }

// --- StepLR ----------------------------------------------------------------------------------------

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler("StepLR", optimizer), step_size_(step_size), gamma_(gamma) {
  initial_step();
}

void StepLR::validate() const {
  if (step_size_ < 1) throw Error(fmt::format("StepLR: invalid step_size: {} (expected at least 1)", step_size_));
  check_non_negative(name(), "gamma", gamma_);
}

double StepLR::get_lr() {
  const double lr = optimizer_.lr();
  if (last_epoch() == 0 || last_epoch() % step_size_ != 0) return lr;
  return lr * gamma_;
}

void StepLR::visit_settings(StateVisitor& visitor) {
  visitor.count("step_size", step_size_);
  visitor.real("gamma", gamma_);
}

// --- ConstantLR ------------------------------------------------------------------------------------

ConstantLR::ConstantLR(Optimizer& optimizer, double factor, std::int64_t total_iters)
    : LRScheduler("ConstantLR", optimizer), factor_(factor), total_iters_(total_iters) {
  initial_step();
}

void ConstantLR::validate() const {
  if (!(factor_ > 0.0 && factor_ <= 1.0)) {
    throw Error(fmt::format("ConstantLR: invalid factor: {} (expected a value in (0, 1])", factor_));
  }
  if (total_iters_ < 1) {
    throw Error(fmt::format("ConstantLR: invalid total_iters: {} (expected at least 1)", total_iters_));
  }
}

double ConstantLR::get_lr() {
  const double lr = optimizer_.lr();
  if (last_epoch() == 0) return lr * factor_;
  if (last_epoch() == total_iters_) return lr * (1.0 / factor_);
  return lr;
}

void ConstantLR::visit_settings(StateVisitor& visitor) {
  visitor.real("factor", factor_);
  visitor.count("total_iters", total_iters_);
}

// --- NoamLR ----------------------------------------------------------------------------------------

NoamLR::NoamLR(Optimizer& optimizer, std::int64_t d_model, std::int64_t warmup_steps, double factor)
    : LRScheduler("NoamLR", optimizer), d_model_(d_model), warmup_steps_(warmup_steps), factor_(factor) {
  initial_step();
}

void NoamLR::validate() const {
  if (d_model_ < 1) throw Error(fmt::format("NoamLR: invalid d_model: {} (expected at least 1)", d_model_));
  if (warmup_steps_ < 1) {
    throw Error(fmt::format("NoamLR: invalid warmup_steps: {} (expected at least 1)", warmup_steps_));
  }
  if (!(factor_ > 0.0 && std::isfinite(factor_))) {
    throw Error(fmt::format("NoamLR: invalid factor: {} (expected a finite value > 0)", factor_));
  }
}

double NoamLR::get_lr() {
  const double s = static_cast<double>(last_epoch() + 1);
  return factor_ * (std::pow(static_cast<double>(d_model_), -0.5) *
                    std::min(std::pow(s, -0.5), s * std::pow(static_cast<double>(warmup_steps_), -1.5)));
}

void NoamLR::visit_settings(StateVisitor& visitor) {
  visitor.count("d_model", d_model_);
  visitor.count("warmup_steps", warmup_steps_);
  visitor.real("factor", factor_);
}

// --- WarmupCosineLR --------------------------------------------------------------------------------

WarmupCosineLR::WarmupCosineLR(Optimizer& optimizer, std::int64_t warmup_steps, std::int64_t total_steps,
                               double min_lr)
    : LRScheduler("WarmupCosineLR", optimizer), warmup_steps_(warmup_steps), total_steps_(total_steps), min_lr_(min_lr) {
  initial_step();
}

void WarmupCosineLR::validate() const {
  if (warmup_steps_ < 0) {
    throw Error(fmt::format("WarmupCosineLR: invalid warmup_steps: {} (expected at least 0)", warmup_steps_));
  }
  if (total_steps_ <= warmup_steps_) {
    throw Error(fmt::format("WarmupCosineLR: invalid total_steps: {} (expected more than warmup_steps, {})",
                            total_steps_, warmup_steps_));
  }
  if (!(min_lr_ >= 0.0 && min_lr_ <= base_lr_)) {
    throw Error(fmt::format("WarmupCosineLR: invalid min_lr: {} (expected a value in [0, base lr {}])", min_lr_,
                            base_lr_));
  }
}

double WarmupCosineLR::get_lr() {
  const double s = static_cast<double>(last_epoch() + 1);
  const auto warmup = static_cast<double>(warmup_steps_);
  if (s <= warmup) return base_lr_ * s / warmup;
  const double progress = std::min(1.0, (s - warmup) / (static_cast<double>(total_steps_) - warmup));
  return min_lr_ + (base_lr_ - min_lr_) * (1.0 + std::cos(kPi * progress)) / 2.0;
}

void WarmupCosineLR::visit_settings(StateVisitor& visitor) {
  visitor.count("warmup_steps", warmup_steps_);
  visitor.count("total_steps", total_steps_);
  visitor.real("min_lr", min_lr_);
}

}  // namespace xgrad::optim
