// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_: called between
// backward() and the optimizer's step().
#pragma once

#include <limits>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad::optim {

/// The norm of order `norm_type` of all gradients together, as if concatenated into one vector
/// (torch.nn.utils.get_total_norm over the parameters' gradients): NaN or infinite when any
/// gradient is. Parameters without a gradient are skipped (0 when none has one). One pass over
/// the gradients, summed in double over fixed chunks: the same on every thread count.
double grad_norm(const std::vector<Tensor>& parameters, double norm_type = 2.0);

/// The norm of order `norm_type` of all gradients together, as if concatenated into one vector:
///   total = (sum_i |g_i|^q)^(1/q), or max_i |g_i| for q = infinity.
/// If max_norm / (total + 1e-6) < 1 every gradient is multiplied by that coefficient (in float32,
/// as torch). Parameters without a gradient are skipped. Returns the total norm before clipping
/// (0 when no parameter has a gradient). With `error_if_nonfinite`, a NaN or infinite total
/// throws an Error instead of scaling. norm_type must be > 0 (or infinity), max_norm >= 0.
/// The sum runs in double over fixed chunks, so the result does not depend on the thread count.
double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

/// Clamps every gradient element into [-clip_value, clip_value] (NaN stays NaN). clip_value >= 0.
void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value);

}  // namespace xgrad::optim
