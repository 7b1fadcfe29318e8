// Gradient clipping by global norm and by value.
#include <xgrad/optim/clip_grad.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
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

// Elements per partial sum: fixed, so that the sums' order never depends on the thread count.
constexpr std::int64_t kChunk = 8192;

// sum_k f(x_k) in double, over fixed chunks (in parallel for large arrays) added in order; within
// a chunk, eight running sums over k mod 8 (vectorizable, and the same order at any address).
template <class F>
double chunked_sum(const Array& values, F f) {
  const float* x = values.data();
  const auto n = static_cast<std::int64_t>(values.size());
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (values.size() >= kParallelUpdateElements)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t begin = c * kChunk;
    const std::int64_t end = std::min(n, begin + kChunk);
    double lanes[8] = {};
    std::int64_t k = begin;
    for (; k + 8 <= end; k += 8) {
      for (int j = 0; j < 8; ++j) lanes[j] += f(x[k + j]);
    }
    for (int j = 0; k < end; ++k, ++j) lanes[j] += f(x[k]);
    partial[static_cast<std::size_t>(c)] =
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

// max_k |x_k|; NaN if any element is NaN (as torch's max).
float max_abs(const Array& values) {
  float result = 0.f;
  for (float x : values) {
    const float a = std::abs(x);
    if (a > result || a != a) result = a;
    if (result != result) break;
  }
  return result;
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  if (!(max_norm >= 0.0)) {
    throw Error(fmt::format("clip_grad_norm_: invalid max_norm: {} (expected a value >= 0)", max_norm));
  }
  if (!(norm_type > 0.0)) {
    throw Error(fmt::format("clip_grad_norm_: invalid norm_type: {} (expected a value > 0, or infinity)", norm_type));
  }
  const std::vector<Array*> grads = gradients_of(parameters, "clip_grad_norm_");
  if (grads.empty()) return 0.0;

  double total = 0.0;
  if (std::isinf(norm_type)) {
    for (const Array* g : grads) {
      const double m = max_abs(*g);
      if (m > total || m != m) total = m;
    }
  } else {
    double sum = 0.0;
    for (const Array* g : grads) {
      if (norm_type == 2.0) sum += chunked_sum(*g, [](float x) { return static_cast<double>(x) * x; });
      else if (norm_type == 1.0) sum += chunked_sum(*g, [](float x) { return std::abs(static_cast<double>(x)); });
      else sum += chunked_sum(*g, [norm_type](float x) { return std::pow(std::abs(static_cast<double>(x)), norm_type); });
    }
    total = norm_type == 2.0 ? std::sqrt(sum) : norm_type == 1.0 ? sum : std::pow(sum, 1.0 / norm_type);
  }

  if (error_if_nonfinite && !std::isfinite(total)) {
    throw Error(fmt::format("clip_grad_norm_: the total norm of order {} of the gradients is {}, so they cannot be "
                            "clipped (error_if_nonfinite is set)",
                            norm_type, total));
  }

  // torch: clip_coef = max_norm / (total_norm + 1e-6) in float32, computed as
  // reciprocal(total + 1e-6) * max_norm, clamped to at most 1 (a NaN coefficient stays NaN).
  const float coef = (1.f / (static_cast<float>(total) + 1e-6f)) * static_cast<float>(max_norm);
  if (!(coef >= 1.f)) {
    for (Array* g : grads) {
      float* x = g->data();
      const auto n = static_cast<std::int64_t>(g->size());
#pragma omp parallel for simd schedule(static) if (g->size() >= kParallelUpdateElements)
      for (std::int64_t k = 0; k < n; ++k) x[k] = x[k] * coef;
    }
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  if (!(clip_value >= 0.0)) {
    throw Error(fmt::format("clip_grad_value_: invalid clip_value: {} (expected a value >= 0)", clip_value));
  }
  const float high = static_cast<float>(clip_value);
  const float low = -high;
  for (Array* g : gradients_of(parameters, "clip_grad_value_")) {
    float* x = g->data();
    const auto n = static_cast<std::int64_t>(g->size());
#pragma omp parallel for simd schedule(static) if (g->size() >= kParallelUpdateElements)
    for (std::int64_t k = 0; k < n; ++k) x[k] = std::min(std::max(x[k], low), high);  // NaN stays NaN
  }
}

}  // namespace xgrad::optim
