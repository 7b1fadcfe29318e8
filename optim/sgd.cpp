// SGD's update: one fused pass over each parameter's contiguous data, in torch's arithmetic order.
#include <xgrad/optim/sgd.hpp>

#include <cstdint>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/optim/detail/batch_loop.hpp>

namespace xgrad::optim {
namespace {

using detail::Batch;

struct SGDConstants {
  float sign;          // -1 to maximize, else 1
  float weight_decay;  // lambda
  float momentum;      // mu
  float keep;          // 1 - dampening
  float neg_lr;        // -lr
};

// One SGD step of a contiguous parameter, with torch's operation order (its add with alpha is
// a + alpha * b). First: the momentum buffer starts as d.
template <bool Decay, bool Momentum, bool First, bool Nesterov>
void sgd_update(float* param, float* grad, float* momentum_buffer, std::int64_t n, const SGDConstants& c) {
  const Batch sign(c.sign), weight_decay(c.weight_decay), momentum(c.momentum), keep(c.keep), neg_lr(c.neg_lr);
  detail::for_each_batch<3>({param, grad, momentum_buffer}, n, [&](const std::array<float*, 3>& at) {
    const Batch p = Batch::load_unaligned(at[0]);
    Batch d = Batch::load_unaligned(at[1]) * sign;
    if constexpr (Decay) d = d + weight_decay * p;
    if constexpr (Momentum) {
      Batch buffer = d;
      if constexpr (!First) buffer = Batch::load_unaligned(at[2]) * momentum + keep * d;
      buffer.store_unaligned(at[2]);
      if constexpr (Nesterov) d = d + momentum * buffer;
      else d = buffer;
    }
    (p + neg_lr * d).store_unaligned(at[0]);
  });
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : Optimizer("SGD", std::move(params)), options_(options), momentum_buffers_(params_.size()) {
  validate();
}

void SGD::validate() const {
  check_non_negative(name(), "learning rate", options_.lr_);
  check_non_negative(name(), "momentum", options_.momentum_);
  check_non_negative(name(), "weight_decay", options_.weight_decay_);
  if (!(options_.dampening_ >= 0.0 && options_.dampening_ <= 1.0)) {
    throw Error(fmt::format("SGD: invalid dampening: {} (expected a value in [0, 1])", options_.dampening_));
  }
  if (options_.nesterov_ && (options_.momentum_ <= 0.0 || options_.dampening_ != 0.0)) {
    throw Error(fmt::format("SGD: nesterov momentum requires a momentum > 0 and zero dampening, got momentum {} "
                            "and dampening {}",
                            options_.momentum_, options_.dampening_));
  }
}

void SGD::set_lr(double lr) {
  check_non_negative(name(), "learning rate", lr);
  options_.lr_ = lr;
}

void SGD::step() {
  // Scalars enter the float arithmetic as torch's kernels take them: cast to float once.
  const float weight_decay = static_cast<float>(options_.weight_decay_);
  const float momentum = static_cast<float>(options_.momentum_);
  const float keep = static_cast<float>(1.0 - options_.dampening_);  // 1 - tau
  const float neg_lr = static_cast<float>(-options_.lr_);
  const bool decay = options_.weight_decay_ != 0.0;
  const bool use_momentum = options_.momentum_ != 0.0;
  const bool nesterov = options_.nesterov_;
  const float sign = options_.maximize_ ? -1.f : 1.f;  // maximize: step along +g

  for (std::size_t i = 0; i < params_.size(); ++i) {
    Array* grad = grad_of(i);
    if (!grad) continue;
    Array& value = params_[i].mutable_value();
    const bool first = use_momentum && !momentum_buffers_[i];
    if (first) momentum_buffers_[i] = xt::zeros<float>(value.shape());
    if (use_momentum) check_state_shape(i, *momentum_buffers_[i], "momentum buffer");

    const SGDConstants constants{sign, weight_decay, momentum, keep, neg_lr};
    float* buffer = use_momentum ? momentum_buffers_[i]->data() : nullptr;
    const auto n = static_cast<std::int64_t>(value.size());
    detail::with_flag(decay, [&](auto decay_flag) {
      detail::with_flag(use_momentum, [&](auto momentum_flag) {
        detail::with_flag(first, [&](auto first_flag) {
          detail::with_flag(nesterov, [&](auto nesterov_flag) {
            sgd_update<decltype(decay_flag)::value, decltype(momentum_flag)::value, decltype(first_flag)::value,
                       decltype(nesterov_flag)::value>(value.data(), grad->data(), buffer, n, constants);
          });
        });
      });
    });
  }
}

void SGD::visit_hyper_parameters(StateVisitor& visitor) {
  visitor.real("lr", options_.lr_);
  visitor.real("momentum", options_.momentum_);
  visitor.real("dampening", options_.dampening_);
  visitor.real("weight_decay", options_.weight_decay_);
  visitor.flag("nesterov", options_.nesterov_);
  visitor.flag("maximize", options_.maximize_);
}

void SGD::reset_state(std::size_t i, bool present) {
  if (present) momentum_buffers_[i] = xt::zeros<float>(params_[i].value().shape());
  else momentum_buffers_[i].reset();
}

void SGD::visit_state(std::size_t i, StateVisitor& visitor) {
  visitor.buffer("momentum_buffer", *momentum_buffers_[i], params_[i].shape());
}

}  // namespace xgrad::optim
