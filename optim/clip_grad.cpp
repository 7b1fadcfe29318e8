// Gradient clipping by global norm and by value: the arguments checked and the norm put together
// here, the passes over each gradient in kernels/optim.
#include <xgrad/optim/clip_grad.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/kernels/optim.hpp>
#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim {
namespace {

std::vector<Array*> gradients_of(const std::vector<Tensor>& parameters, const char* op) {
  std::vector<Array*> grads;
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (!parameters[i].defined()) throw Error(fmt::format("{}: parameter {} is undefined", op, i));
    TensorImpl* impl = parameters[i].impl();
    if (impl->grad) grads.push_back(impl->grad.get());
  }
  return grads;
}

/// The total norm of `grads` (norm_type already checked).
double total_norm(const std::vector<Array*>& grads, double norm_type) {
  double total = 0.0;
  if (std::isinf(norm_type)) {
    for (const Array* g : grads) {
      const double m = kernels::max_abs(g->data(), g->size());
      if (m > total || m != m) total = m;
    }
    return total;
  }
  double sum = 0.0;
  for (const Array* g : grads) sum += kernels::sum_abs_pow(g->data(), g->size(), norm_type);
  return norm_type == 2.0 ? std::sqrt(sum) : norm_type == 1.0 ? sum : std::pow(sum, 1.0 / norm_type);
}

void check_norm_type(const char* op, double norm_type) {
  if (!(norm_type > 0.0)) {
    throw Error(fmt::format("{}: invalid norm_type: {} (expected a value > 0, or infinity)", op, norm_type));
  }
}

}  // namespace

double grad_norm(const std::vector<Tensor>& parameters, double norm_type) {
  check_norm_type("grad_norm", norm_type);
  return total_norm(gradients_of(parameters, "grad_norm"), norm_type);
}

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  if (!(max_norm >= 0.0)) {
    throw Error(fmt::format("clip_grad_norm_: invalid max_norm: {} (expected a value >= 0)", max_norm));
  }
  check_norm_type("clip_grad_norm_", norm_type);
  const std::vector<Array*> grads = gradients_of(parameters, "clip_grad_norm_");
  if (grads.empty()) return 0.0;
  const double total = total_norm(grads, norm_type);

  if (error_if_nonfinite && !std::isfinite(total)) {
    throw Error(fmt::format("clip_grad_norm_: the total norm of order {} of the gradients is {}, so they cannot be "
                            "clipped (error_if_nonfinite is set)",
                            norm_type, total));
  }

  // torch: clip_coef = max_norm / (total_norm + 1e-6) in float32, computed as
  // reciprocal(total + 1e-6) * max_norm, clamped to at most 1 (a NaN coefficient stays NaN).
  const float coef = (1.f / (static_cast<float>(total) + 1e-6f)) * static_cast<float>(max_norm);
  if (!(coef >= 1.f)) {
    for (Array* g : grads) kernels::scale_(g->data(), g->size(), coef);
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  if (!(clip_value >= 0.0)) {
    throw Error(fmt::format("clip_grad_value_: invalid clip_value: {} (expected a value >= 0)", clip_value));
  }
  const float high = static_cast<float>(clip_value);
  const float low = -high;
  for (Array* g : gradients_of(parameters, "clip_grad_value_")) kernels::clamp_(g->data(), g->size(), low, high);
}

}  // namespace xgrad::optim
