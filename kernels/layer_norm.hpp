// Layer normalization over contiguous rows (R, D), optionally of a sum x + residual formed in the
// same pass (the residual connection of a post-LN Transformer layer).
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// Per row of s = x (+ residual): mean[r], rstd[r] = 1 / sqrt(var + eps) (biased variance) and
/// y = (s - mean) rstd w + b. With a residual, s is written to `sum` (the backward reads it).
/// w and b: (D), never null (ones and zeros stand in for an absent affine transform).
void layer_norm_forward(const float* x, const float* residual, float* sum, std::size_t rows, std::size_t d,
                        const float* w, const float* b, float eps, float* mean, float* rstd, float* y);

/// An array (R, D) the backward puts ds in: written, or added to when `add` is set (a gradient
/// that already holds another consumer's part). Null data: not wanted.
struct RowsGrad {
  float* data = nullptr;
  bool add = false;
};

/// With xhat = (s - mean) rstd and g = dy w, per row: ds = rstd (g - mean(g) - xhat mean(g xhat)),
/// into ds0 and ds1 (x's and the residual's gradients; either may be absent, both may be the same
/// array: ds1 is put after ds0, element by element); dw += sum over rows of dy xhat and db += sum
/// of dy (if not null). Each thread puts the rows it computed, so nothing crosses between cores
/// after the kernel.
void layer_norm_backward(const float* s, const float* dy, std::size_t rows, std::size_t d, const float* w,
                         const float* mean, const float* rstd, RowsGrad ds0, RowsGrad ds1, float* dw, float* db);

}  // namespace xgrad::kernels
