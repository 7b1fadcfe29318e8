// Cross-entropy rows: log-softmax, negative log-likelihood and label smoothing fused in one pass
// over each row of logits, forward and backward.
//
// Legend: N = rows (batch x tokens), C = classes, t_n = target of row n, eps = label smoothing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xgrad::kernels {

/// For each row n of x (N, C) whose target t_n is not `ignore`:
///   lse_n = log sum_c exp x_{n,c},
///   loss_n = (1 - eps) (lse_n - x_{n,t_n}) + eps (lse_n - mean_c x_{n,c})   (lse_n - x_{n,t_n} if eps = 0).
/// lse (N) and loss (N) are left as they are at ignored rows. Each t_n is in [0, C) or `ignore`.
void cross_entropy_forward(const float* x, const std::int64_t* t, std::size_t N, std::size_t C,
                           std::int64_t ignore, float eps, float* lse, float* loss);

/// dx (N, C) = d loss / d x with row n's loss scaled by scale_n:
///   dx_{n,c} = scale_n (exp(x_{n,c} - lse_n) - eps / C - (1 - eps) [c == t_n]),
/// and 0 on rows whose target is `ignore`. lse (N) is what the forward computed.
void cross_entropy_backward(const float* x, const std::int64_t* t, const float* lse, const float* scale, std::size_t N,
                            std::size_t C, std::int64_t ignore, float eps, float* dx);

}  // namespace xgrad::kernels
