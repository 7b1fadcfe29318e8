// Layer normalization over contiguous rows (R, D), optionally of a sum x + residual formed in the
// same pass (the residual connection of a post-LN Transformer layer).
#pragma once

#include <cstddef>

#include <xgrad/kernels/grad_out.hpp>

namespace xgrad::kernels {

/// Per row of s = x (+ residual): mean[r], rstd[r] = 1 / sqrt(var + eps) (biased variance) and
/// y = (s - mean) rstd w + b. With a residual, s is written to `sum` (the backward reads it).
/// w and b: (D), never null (ones and zeros stand in for an absent affine transform).
void layer_norm_forward(const float* x, const float* residual, float* sum, std::size_t rows, std::size_t d,
                        const float* w, const float* b, float eps, float* mean, float* rstd, float* y);

/// With xhat = (s - mean) rstd and g = dy w, per row: ds = rstd (g - mean(g) - xhat mean(g xhat)),
/// into ds0 and ds1 (x's and the residual's gradients, (R, D); either may be absent, both may be
/// the same array: ds1 is put after ds0, element by element); dw += sum over rows of dy xhat and
/// db += sum of dy (if not null).
void layer_norm_backward(const float* s, const float* dy, std::size_t rows, std::size_t d, const float* w,
                         const float* mean, const float* rstd, GradOut ds0, GradOut ds1, float* dw, float* db);

}  // namespace xgrad::kernels
