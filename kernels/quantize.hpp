// int8 inference for linear layers: weights quantized once, per output row; activations per row
// on the fly; products accumulated exactly in int32; results back in fp32.
//
// The scheme (y = x W^T + b, W (N, K), x (M, K)):
//   weights, symmetric per row n:  s_n = max_k |W_nk| / 127,  Q_nk = round(W_nk / s_n) in [-127, 127]
//   activations, asymmetric per row m, 7 bits:  lo = min(0, min_k x_mk), hi = max(0, max_k x_mk),
//       a_m = (hi - lo) / 127,  z_m = round(-lo / a_m) in [0, 127],
//       P_mk = clamp(round(x_mk / a_m) + z_m, 0, 127)
//   y_mn = a_m s_n (sum_k P_mk Q_nk - z_m sum_k Q_nk) + b_n
// The int32 sum is exact. 7 bits for activations (not 8) keep every pair P Q + P' Q' within 16
// bits, which CPUs without VNNI add in (saturating): one scheme, the same numbers on every CPU.
// Error bound, per output: each x is off by at most a_m / 2 and each W by s_n / 2, so
//   |y_mn - exact| <= sum_k (|x_mk| s_n + |W_nk| a_m + a_m s_n / 2) / 2
// (quantized_error_bound computes it); in practice the errors of the K terms mostly cancel and the
// error is some sqrt(K) times smaller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace xgrad::kernels {

/// W (N, K) quantized per row.
struct QuantizedWeight {
  std::size_t rows = 0, cols = 0;      // N, K
  std::vector<std::int8_t> values;     // (N, K): Q
  std::vector<float> scales;           // (N): s
  std::vector<std::int32_t> row_sums;  // (N): sum_k Q_nk, for the activations' zero points
};

/// Quantizes w (rows, cols), row-major. Throws xgrad::Error on a non-finite weight.
QuantizedWeight quantize_weight(const float* w, std::size_t rows, std::size_t cols);

/// The same weight back in fp32 into out (rows, cols), row-major: s_n Q_nk.
void dequantize_weight(const QuantizedWeight& w, float* out);

/// y (M, count) = x (M, K) W[first .. first + count)^T + b, b (count) or null, with W's rows
/// [first, first + count) (a slice: the query, key or value block of a fused projection), in int8
/// as above; with relu, y = relu(that) in the same pass (relu_forward's semantics: NaN -> 0). x and
/// y dense row-major; K = w.cols.
void quantized_linear(const float* x, std::size_t M, const QuantizedWeight& w, std::size_t first, std::size_t count,
                      const float* bias, float* y, bool relu = false);

/// The bound above for every output of quantized_linear (no bias), (M, count).
std::vector<float> quantized_error_bound(const float* x, std::size_t M, const float* w, const QuantizedWeight& q,
                                         std::size_t first, std::size_t count);

}  // namespace xgrad::kernels
