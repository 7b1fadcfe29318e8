// Losses: fused cross-entropy (log-softmax + NLL + label smoothing + ignore_index in one pass over
// each row, the rows in kernels/cross_entropy), NLL on log-probabilities, and mean squared error.
//
// Legend: N = rows (batch x tokens), C = classes, t_n = target of row n, eps = label smoothing,
// K = number of non-ignored rows (the divisor of Reduction::Mean).
#include <xgrad/autograd/ops/loss.hpp>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include <xgrad/autograd/broadcast.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/cross_entropy.hpp>
#include <xgrad/kernels/mse_loss.hpp>

namespace xgrad {

namespace {

// --- shapes and targets shared by cross_entropy and nll_loss -----------------------------------

struct ClassProblem {
  std::size_t N = 0, C = 0;
  bool batched = true;  // (N, C) input; false: (C) with a 0-d target, treated as N = 1
  std::size_t count = 0;  // K: targets that are not ignore_index
};

/// Checks input (N, C) with targets (N), or input (C) with a 0-d target, and every target.
ClassProblem check_targets(const char* op, const Shape& input_shape, const Indices& targets,
                           std::int64_t ignore_index) {
  const Shape target_shape(targets.shape().begin(), targets.shape().end());
  ClassProblem p;
  if (input_shape.size() == 2) {
    p.N = input_shape[0];
    p.C = input_shape[1];
    if (target_shape.size() != 1 || target_shape[0] != p.N) {
      throw Error(fmt::format("{}: input of shape {} expects targets of shape [{}], got targets of shape {}", op,
                              shape_str(input_shape), p.N, shape_str(target_shape)));
    }
  } else if (input_shape.size() == 1) {
    p.N = 1;
    p.C = input_shape[0];
    p.batched = false;
    if (!target_shape.empty()) {
      throw Error(fmt::format("{}: input of shape {} (one row of classes) expects a 0-d target, got targets of "
                              "shape {}",
                              op, shape_str(input_shape), shape_str(target_shape)));
    }
  } else {
    throw Error(fmt::format("{}: expected an input of shape [N, C] or [C], got shape {}", op,
                            shape_str(input_shape)));
  }
  const auto C = static_cast<std::int64_t>(p.C);
  for (std::size_t n = 0; n < p.N; ++n) {
    const std::int64_t t = targets.data()[n];
    if (t == ignore_index) continue;
    if (t < 0 || t >= C) {
      throw Error(fmt::format("{}: target {} at position {} is out of range for {} classes (expected 0 to {}, or "
                              "ignore_index {})",
                              op, t, n, p.C, C - 1, ignore_index));
    }
    ++p.count;
  }
  return p;
}

/// The reduced loss from per-row losses: (N) or () for None, else a 0-d sum or mean over K rows.
/// A mean over no row is 0/0 = NaN, as in PyTorch.
Array reduce_rows(std::vector<float>&& losses, const ClassProblem& p, Reduction reduction) {
  if (reduction == Reduction::None) {
    Array out = Array::from_shape(p.batched ? Shape{p.N} : Shape{});
    std::copy(losses.begin(), losses.end(), out.begin());
    return out;
  }
  double total = 0;
  for (float l : losses) total += l;
  if (reduction == Reduction::Mean) {
    total = p.count > 0 ? total / static_cast<double>(p.count) : std::numeric_limits<double>::quiet_NaN();
  }
  return Array(static_cast<float>(total));
}

/// d loss / d l_n for every row: upstream gradient, divided by K for Mean (0 when K = 0: no row
/// contributes, so every gradient is 0, as in PyTorch).
std::vector<float> row_scales(const Array& grad_output, const ClassProblem& p, Reduction reduction) {
  std::vector<float> scale(p.N);
  if (reduction == Reduction::None) {
    std::copy(grad_output.begin(), grad_output.end(), scale.begin());
  } else {
    float g = *grad_output.data();
    if (reduction == Reduction::Mean) g = p.count > 0 ? g / static_cast<float>(p.count) : 0.f;
    std::fill(scale.begin(), scale.end(), g);
  }
  return scale;
}

void check_reduction(const char* op, Reduction reduction) {
  if (reduction != Reduction::None && reduction != Reduction::Mean && reduction != Reduction::Sum) {
    throw Error(fmt::format("{}: unknown reduction {}", op, static_cast<int>(reduction)));
  }
}
}  // namespace

// --- cross_entropy -------------------------------------------------------------------------------

// l_n = (1 - eps) (lse_n - x_{n,t_n}) + eps (lse_n - mean_c x_{n,c}),  lse_n = log sum_c exp x_{n,c};
// l_n = 0 where t_n == ignore_index.
// d l_n / d x_{n,c} = p_{n,c} - (1 - eps) [c == t_n] - eps / C,  p_{n,c} = exp(x_{n,c} - lse_n).
// Forward saves lse (N); backward recomputes p from the logits in the same pass that writes dx.
Tensor cross_entropy(const Tensor& logits, const Indices& targets, const CrossEntropyOptions& options) {
  if (!logits.defined()) throw Error("cross_entropy: the logits tensor is undefined");
  check_reduction("cross_entropy", options.reduction);
  const float eps = options.label_smoothing;
  if (!(eps >= 0.f && eps <= 1.f)) {
    throw Error(fmt::format("cross_entropy: label_smoothing must be between 0.0 and 1.0, got {}", eps));
  }
  const std::int64_t ignore = options.ignore_index;
  const ClassProblem p = check_targets("cross_entropy", logits.shape(), targets, ignore);
  const std::size_t N = p.N, C = p.C;

  auto lse = std::make_shared<std::vector<float>>(N, 0.f);  // (N)
  std::vector<float> losses(N, 0.f);                        // (N)
  kernels::cross_entropy_forward(logits.value().data(), targets.data(), N, C, ignore, eps, lse->data(),
                                 losses.data());
  Array out = reduce_rows(std::move(losses), p, options.reduction);

  auto saved_logits = logits.saved();
  auto saved_targets = std::make_shared<const Indices>(targets);
  const Reduction reduction = options.reduction;
  return record("cross_entropy", std::move(out), {logits},
                [saved_logits, saved_targets, lse, p, eps, ignore, reduction](BackwardContext& ctx) {
                  const std::vector<float> scale = row_scales(ctx.grad_output(), p, reduction);
                  Array grad = Array::from_shape(shape_of(*saved_logits));  // (N, C)
                  kernels::cross_entropy_backward(saved_logits->data(), saved_targets->data(), lse->data(),
                                                  scale.data(), p.N, p.C, ignore, eps, grad.data());
                  ctx.accumulate(0, std::move(grad));
                });
}

// --- nll_loss ------------------------------------------------------------------------------------

// l_n = -lp_{n,t_n} (0 where t_n == ignore_index).   d l_n / d lp_{n,c} = -[c == t_n].
Tensor nll_loss(const Tensor& log_probs, const Indices& targets, std::int64_t ignore_index, Reduction reduction) {
  if (!log_probs.defined()) throw Error("nll_loss: the log_probs tensor is undefined");
  check_reduction("nll_loss", reduction);
  const ClassProblem p = check_targets("nll_loss", log_probs.shape(), targets, ignore_index);
  const std::size_t C = p.C;
  const float* lp = log_probs.value().data();  // (N, C)
  const std::int64_t* t = targets.data();       // (N)
  std::vector<float> losses(p.N, 0.f);          // (N)
  for (std::size_t n = 0; n < p.N; ++n) {
    if (t[n] != ignore_index) losses[n] = -lp[n * C + t[n]];
  }
  Array out = reduce_rows(std::move(losses), p, reduction);

  auto saved_targets = std::make_shared<const Indices>(targets);
  return record("nll_loss", std::move(out), {log_probs},
                [saved_targets, p, ignore_index, reduction](BackwardContext& ctx) {
                  const std::vector<float> scale = row_scales(ctx.grad_output(), p, reduction);
                  float* grad = ctx.grad_buffer(0).data();  // (N, C), accumulated in place
                  const std::int64_t* t = saved_targets->data();
                  for (std::size_t n = 0; n < p.N; ++n) {
                    if (t[n] != ignore_index) grad[n * p.C + t[n]] -= scale[n];
                  }
                });
}

// --- mse_loss ------------------------------------------------------------------------------------

// l = (a - b)^2 elementwise, broadcast, then reduced (Mean over every element of the broadcast shape).
// d l / d a = 2 (a - b),  d l / d b = -2 (a - b), summed back to each input's shape.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (!input.defined() || !target.defined()) throw Error("mse_loss: an input tensor is undefined");
  check_reduction("mse_loss", reduction);
  broadcast_shapes("mse_loss", input.shape(), target.shape());
  auto diff = std::make_shared<Array>(input.value() - target.value());  // broadcast shape
  const float* d = diff->data();
  const std::size_t n = diff->size();

  Array out;
  if (reduction == Reduction::None) {
    out = Array::from_shape(shape_of(*diff));
    kernels::mse_forward(d, out.data(), n);
  } else {
    double total = kernels::mse_sum(d, n);
    if (reduction == Reduction::Mean) total /= static_cast<double>(n);  // empty: 0/0 = NaN, as PyTorch
    out = Array(static_cast<float>(total));
  }

  const Shape input_shape = input.shape(), target_shape = target.shape();
  return record("mse_loss", std::move(out), {input, target},
                [diff, input_shape, target_shape, reduction](BackwardContext& ctx) {
                  const Array& g = ctx.grad_output();
                  const Array& dv = *diff;
                  Array grad = Array::from_shape(shape_of(dv));
                  const std::size_t n = dv.size();
                  if (reduction == Reduction::None) {
                    kernels::mse_backward(dv.data(), g.data(), grad.data(), n);
                  } else {
                    float s = 2.f * *g.data();
                    if (reduction == Reduction::Mean) s /= static_cast<float>(n);
                    kernels::mse_backward_reduced(dv.data(), s, grad.data(), n);
                  }
                  if (ctx.needs_grad(1)) ctx.accumulate(1, sum_to_shape(-grad, target_shape));
                  if (ctx.needs_grad(0)) ctx.accumulate(0, sum_to_shape(std::move(grad), input_shape));
                });
}

}  // namespace xgrad
