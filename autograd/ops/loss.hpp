// Losses, with PyTorch's reductions and conventions.
#pragma once

#include <cstdint>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad {

enum class Reduction { None, Mean, Sum };

struct CrossEntropyOptions {
  std::int64_t ignore_index = -100;  ///< targets equal to this contribute nothing
  float label_smoothing = 0.f;       ///< eps in [0, 1]: target distribution (1-eps) one-hot + eps/C
  Reduction reduction = Reduction::Mean;  ///< Mean averages over the non-ignored targets
};

/// logits (N, C), targets (N) int64 in [0, C) -> loss; fused log-softmax + NLL, as
/// torch.nn.functional.cross_entropy:
///   l_n = (1 - eps) (-log p_{n,t_n}) + eps * mean_c(-log p_{n,c}),  p = softmax(logits_n).
/// d l_n / d logits_{n,c} = p_{n,c} - (1 - eps) [c == t_n] - eps / C.
/// Reduction::None gives (N) with 0 at ignored targets; Mean divides by the number of targets
/// that are not ignored, so with every target ignored (or N = 0) it is 0/0 = NaN, as PyTorch, and
/// the gradient is 0. logits (C) with a 0-d target is one row (output 0-d). A target outside
/// [0, C) that is not ignore_index throws, naming its position and C; targets not of shape (N)
/// throw showing both shapes. The forward keeps log-sum-exp per row; the backward recomputes the
/// softmax from the logits in one pass.
Tensor cross_entropy(const Tensor& logits, const Indices& targets, const CrossEntropyOptions& options = {});

/// log_probs (N, C), targets (N) -> -log_probs[n, t_n], reduced as cross_entropy (without
/// smoothing; same shapes, ignore_index and NaN mean when everything is ignored).
/// d l_n / d log_probs[n, c] = -[c == t_n].
Tensor nll_loss(const Tensor& log_probs, const Indices& targets, std::int64_t ignore_index = -100,
                Reduction reduction = Reduction::Mean);

/// (input - target)^2, reduced. Shapes must match (or broadcast, as PyTorch, which warns); Mean
/// averages over the broadcast shape. d/d input = 2 (input - target), d/d target = -2 (input - target).
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace xgrad
