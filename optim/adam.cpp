// Adam's and AdamW's update: one fused pass over each parameter's contiguous data, in the
// arithmetic order of torch's single-tensor implementation (torch 1.13, _single_tensor_adam[w]).
#include <xgrad/optim/adam.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <xsimd/xsimd.hpp>

#include <xgrad/autograd/error.hpp>
#include <xgrad/optim/detail/flags.hpp>

namespace xgrad::optim {
namespace detail {
namespace {

struct AdamKernelArgs {
  float* p;              // the parameter
  const float* g;        // its gradient
  float* m;              // exp_avg
  float* v;              // exp_avg_sq
  float* v_max;          // max_exp_avg_sq (amsgrad), else null
  std::int64_t n;        // elements of each
  float sign;            // -1 to maximize, else 1
  float shrink;          // AdamW's 1 - lr lambda, else 1
  float weight_decay;    // Adam's lambda
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float bias_correction2_sqrt;
  float eps;
  float neg_step_size;   // -lr / (1 - beta1^t)
};

inline float pick(bool condition, float yes, float no) { return condition ? yes : no; }
template <class Arch>
xsimd::batch<float, Arch> pick(const xsimd::batch_bool<float, Arch>& condition, const xsimd::batch<float, Arch>& yes,
                               const xsimd::batch<float, Arch>& no) {
  return xsimd::select(condition, yes, no);
}

// One Adam step of one element (T = float) or one SIMD batch of them (T = xsimd::batch), with
// torch's operation order (its addcmul is v + (value * g) * g, its addcdiv p + (value * m) / denom).
// Returns the new parameter value; m, v and v_max are updated in place.
template <bool Amsgrad, bool CoupledDecay, class T>
T adam_element(T g, T p, T& m, T& v, T& v_max, const AdamKernelArgs& a) {
  using std::sqrt;
  using xsimd::sqrt;
  g = g * T(a.sign);
  p = p * T(a.shrink);
  if constexpr (CoupledDecay) g = g + T(a.weight_decay) * p;
  m = m * T(a.beta1) + T(a.one_minus_beta1) * g;
  v = v * T(a.beta2) + T(a.one_minus_beta2) * g * g;
  T second = v;
  if constexpr (Amsgrad) {
    v_max = pick((v > v_max) | (v != v), v, v_max);  // torch.maximum: NaN wins
    second = v_max;
  }
  const T denom = sqrt(second) / T(a.bias_correction2_sqrt) + T(a.eps);
  return p + T(a.neg_step_size) * m / denom;
}

// Elements [begin, end) of a parameter: whole SIMD batches, then one element at a time. (Written
// with xsimd because GCC leaves a loop calling std::sqrt scalar unless errno is switched off.)
template <bool Amsgrad, bool CoupledDecay>
void adam_block(const AdamKernelArgs& a, std::int64_t begin, std::int64_t end) {
  using Batch = xsimd::batch<float>;
  constexpr auto width = static_cast<std::int64_t>(Batch::size);
  std::int64_t k = begin;
  for (; k + width <= end; k += width) {
    Batch m = Batch::load_unaligned(a.m + k);
    Batch v = Batch::load_unaligned(a.v + k);
    Batch v_max = Amsgrad ? Batch::load_unaligned(a.v_max + k) : Batch(0.f);
    const Batch p = adam_element<Amsgrad, CoupledDecay>(Batch::load_unaligned(a.g + k), Batch::load_unaligned(a.p + k),
                                                        m, v, v_max, a);
    p.store_unaligned(a.p + k);
    m.store_unaligned(a.m + k);
    v.store_unaligned(a.v + k);
    if constexpr (Amsgrad) v_max.store_unaligned(a.v_max + k);
  }
  for (; k < end; ++k) {
    float v_max = Amsgrad ? a.v_max[k] : 0.f;
    a.p[k] = adam_element<Amsgrad, CoupledDecay>(a.g[k], a.p[k], a.m[k], a.v[k], v_max, a);
    if constexpr (Amsgrad) a.v_max[k] = v_max;
  }
}

// Fixed blocks, so which elements take the batch path never depends on the thread count.
constexpr std::int64_t kBlock = 4096;

template <bool Amsgrad, bool CoupledDecay>
void adam_kernel(const AdamKernelArgs& a) {
  const std::int64_t blocks = (a.n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (a.n >= static_cast<std::int64_t>(kParallelUpdateElements))
  for (std::int64_t b = 0; b < blocks; ++b) {
    adam_block<Amsgrad, CoupledDecay>(a, b * kBlock, std::min(a.n, (b + 1) * kBlock));
  }
}

}  // namespace

AdamBase::AdamBase(std::string name, std::vector<Tensor> params, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(std::move(name), std::move(params)),
      options_(options),
      decoupled_weight_decay_(decoupled_weight_decay),
      state_(params_.size()) {
  validate();
}

void AdamBase::validate() const {
  check_non_negative(name(), "learning rate", options_.lr_);
  check_non_negative(name(), "epsilon value", options_.eps_);
  check_unit_interval(name(), "beta parameter at index 0", options_.beta1_);
  check_unit_interval(name(), "beta parameter at index 1", options_.beta2_);
  check_non_negative(name(), "weight_decay value", options_.weight_decay_);
}

void AdamBase::set_lr(double lr) {
  check_non_negative(name(), "learning rate", lr);
  options_.lr_ = lr;
}

void AdamBase::step() {
  const double lr = options_.lr_;
  // Scalars enter the float arithmetic as torch's kernels take them: cast to float once.
  const float beta1 = static_cast<float>(options_.beta1_);
  const float beta2 = static_cast<float>(options_.beta2_);
  const float one_minus_beta1 = static_cast<float>(1.0 - options_.beta1_);
  const float one_minus_beta2 = static_cast<float>(1.0 - options_.beta2_);
  const float eps = static_cast<float>(options_.eps_);
  const float weight_decay = static_cast<float>(options_.weight_decay_);
  // AdamW: p (1 - lr lambda); Adam: p * 1, exact.
  const float shrink = decoupled_weight_decay_ ? static_cast<float>(1.0 - lr * options_.weight_decay_) : 1.f;
  const float sign = options_.maximize_ ? -1.f : 1.f;  // maximize: step along +g
  const bool coupled_decay = !decoupled_weight_decay_ && options_.weight_decay_ != 0.0;
  const bool amsgrad = options_.amsgrad_;

  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Array* grad = grad_of(i);
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

    AdamKernelArgs args{value.data(), grad->data(), state.exp_avg.data(), state.exp_avg_sq.data(),
                        amsgrad ? state.max_exp_avg_sq.data() : nullptr, static_cast<std::int64_t>(value.size()),
                        sign, shrink, weight_decay, beta1, one_minus_beta1, beta2, one_minus_beta2,
                        bias_correction2_sqrt, eps, neg_step_size};
    with_flag(amsgrad, [&](auto amsgrad_flag) {
      with_flag(coupled_decay, [&](auto decay_flag) {
        adam_kernel<decltype(amsgrad_flag)::value, decltype(decay_flag)::value>(args);
      });
    });
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
    : AdamBase("Adam", std::move(params), options, /*decoupled_weight_decay=*/false) {}

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
    : AdamBase("AdamW", std::move(params), as_adam_options(options), /*decoupled_weight_decay=*/true) {}

}  // namespace xgrad::optim
