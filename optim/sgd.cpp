// SGD's step: one fused pass over each parameter's contiguous data (kernels/optim), in torch's
// arithmetic order.
#include <xgrad/optim/sgd.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/kernels/optim.hpp>

namespace xgrad::optim {

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params), std::nullopt, std::nullopt}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer("SGD", std::move(groups)), options_(options), momentum_buffers_(params_.size()) {
  validate();
  resolve_groups(options_.lr_, options_.weight_decay_);
}

void SGD::validate() const {
  check_non_negative(name(), "learning rate", options_.lr_);
  check_non_negative(name(), "momentum", options_.momentum_);
  check_non_negative(name(), "weight_decay", options_.weight_decay_);
  validate_groups();
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
  scale_group_lrs(lr);
}

void SGD::step() {
  // Scalars enter the float arithmetic as torch's kernels take them: cast to float once.
  const float momentum = static_cast<float>(options_.momentum_);
  const float keep = static_cast<float>(1.0 - options_.dampening_);  // 1 - tau
  const bool use_momentum = options_.momentum_ != 0.0;
  const bool nesterov = options_.nesterov_;
  const float sign = options_.maximize_ ? -1.f : 1.f;  // maximize: step along +g

  for (const Group& group : groups_) {
    const float weight_decay = static_cast<float>(group.weight_decay);
    const float neg_lr = static_cast<float>(-group.lr);
    const bool decay = group.weight_decay != 0.0;
    for (std::size_t i = group.begin; i < group.end; ++i) {
      Array* grad = grad_of(i);
      if (!grad) continue;
      Array& value = params_[i].mutable_value();
      const bool first = use_momentum && !momentum_buffers_[i];
      if (first) momentum_buffers_[i] = xt::zeros<float>(value.shape());
      if (use_momentum) check_state_shape(i, *momentum_buffers_[i], "momentum buffer");

      const kernels::SGDConstants constants{sign, weight_decay, momentum, keep, neg_lr};
      float* buffer = use_momentum ? momentum_buffers_[i]->data() : nullptr;
      kernels::sgd_update(value.data(), grad->data(), buffer, value.size(), constants, decay, use_momentum, first,
                          nesterov);
    }
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
