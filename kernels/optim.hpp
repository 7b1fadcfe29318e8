// Optimizer updates and gradient clipping over each parameter's contiguous data, with torch.optim's
// formulas in the order of operations of torch 1.13's single-tensor implementations.
#pragma once

#include <cstddef>

namespace xgrad::kernels {

/// Adam's and AdamW's per-step scalars, each cast to float once as torch's kernels take them.
struct AdamConstants {
  float sign;           // -1 to maximize, else 1
  float shrink;         // AdamW's 1 - lr lambda, else 1
  float weight_decay;   // Adam's lambda
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  float eps;
  float neg_step_size;  // -lr / (1 - beta1^t)
};

/// One Adam or AdamW step of n elements (max_exp_avg_sq is read only with amsgrad):
///   g = sign grad,  p = shrink p,  g = g + lambda p (coupled_decay: Adam's weight decay),
///   m = m beta1 + (1 - beta1) g,  v = v beta2 + ((1 - beta2) g) g,
///   v_max = max(v_max, v) (amsgrad; NaN wins, as torch.maximum),
///   p = p + (neg_step_size m) / (sqrt(amsgrad ? v_max : v) / sqrt(1 - beta2^t) + eps).
void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
                 std::size_t n, const AdamConstants& c, bool amsgrad, bool coupled_decay);

/// SGD's per-step scalars, each cast to float once as torch's kernels take them.
struct SGDConstants {
  float sign;          // -1 to maximize, else 1
  float weight_decay;  // lambda
  float momentum;      // mu
  float keep;          // 1 - dampening
  float neg_lr;        // -lr
};

/// One SGD step of n elements (momentum_buffer is used only with momentum):
///   d = sign grad,  d = d + lambda p (decay),
///   b = first ? d : b mu + (1 - dampening) d,  d = nesterov ? d + mu b : b   (momentum),
///   p = p + (-lr) d.
void sgd_update(float* param, const float* grad, float* momentum_buffer, std::size_t n, const SGDConstants& c,
                bool decay, bool momentum, bool first, bool nesterov);

/// sum_k |x_k|^p in double (x_k^2 for p = 2, |x_k| for p = 1, else pow), summed over fixed chunks
/// added in order: the same total at any thread count.
double sum_abs_pow(const float* x, std::size_t n, double p);
/// max_k |x_k| (0 for none); NaN if any element is NaN, as torch's max.
float max_abs(const float* x, std::size_t n);
/// x_k = x_k coef, in place.
void scale_(float* x, std::size_t n, float coef);
/// x_k = min(max(x_k, low), high), in place; NaN stays NaN.
void clamp_(float* x, std::size_t n, float low, float high);

}  // namespace xgrad::kernels
