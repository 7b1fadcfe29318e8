// layer_norm_forward and layer_norm_backward: each row's passes while it sits in L1, rows over the
// threads; the forward takes rows two at a time, the backward makes its two sums and the row's
// weight and bias terms in one pass; the weight and bias sums per thread, added up at the end.
#include <xgrad/kernels/layer_norm.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include <omp.h>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>

namespace xgrad::kernels {

namespace {

using row_sums_detail::sum_pair;
using vec::load;
using vec::store;
using vec::Vec;

/// Mean and biased variance of one row, in two passes over it.
inline void row_moments(const float* x, std::size_t d, float& mean, float& var) {
  mean = row_sum(x, d) / static_cast<float>(d);
  var = row_sum_squares(x, d, mean) / static_cast<float>(d);
}

/// The same for two rows, their passes interleaved, each row's sums added in row_moments' order
/// (sum_pair: its numbers, up to a rounding in a tail narrower than a vector).
inline void row_moments_pair(const float* x0, const float* x1, std::size_t d, float& mean0, float& var0, float& mean1,
                             float& var1) {
  float s0, s1;
  sum_pair(
      d, [&](std::size_t i) { return load(x0 + i); }, [&](std::size_t i) { return load(x1 + i); },
      [&](std::size_t i) { return x0[i]; }, [&](std::size_t i) { return x1[i]; }, s0, s1);
  const float m0 = s0 / static_cast<float>(d), m1 = s1 / static_cast<float>(d);
  float q0, q1;
  sum_pair(
      d,
      [&](std::size_t i) {
        const Vec c = load(x0 + i) - m0;
        return c * c;
      },
      [&](std::size_t i) {
        const Vec c = load(x1 + i) - m1;
        return c * c;
      },
      [&](std::size_t i) { return (x0[i] - m0) * (x0[i] - m0); },
      [&](std::size_t i) { return (x1[i] - m1) * (x1[i] - m1); }, q0, q1);
  mean0 = m0;
  mean1 = m1;
  var0 = q0 / static_cast<float>(d);
  var1 = q1 / static_cast<float>(d);
}

/// y = (s - mean) rstd w + b over one row.
inline void normalize(const float* s, std::size_t d, float mean, float rstd, const float* w, const float* b, float* y) {
#pragma omp simd
  for (std::size_t j = 0; j < d; ++j) y[j] = (s[j] - mean) * rstd * w[j] + b[j];
}

/// s = x + residual over one row.
inline void add_row(const float* x, const float* residual, std::size_t d, float* s) {
#pragma omp simd
  for (std::size_t j = 0; j < d; ++j) s[j] = x[j] + residual[j];
}

}  // namespace

void layer_norm_forward(const float* x, const float* residual, float* sum, std::size_t rows, std::size_t d,
                        const float* w, const float* b, float eps, float* mean, float* rstd, float* y) {
  // The row normalized: x, or s = x + residual formed first (written to `sum`).
  const auto row = [&](std::size_t r) {
    if (!residual) return x + r * d;
    add_row(x + r * d, residual + r * d, d, sum + r * d);
    return static_cast<const float*>(sum + r * d);
  };
  // Rows two at a time: a row's sums wait on their adds, and a second row's fill those waits.
  parallel_rows((rows + 1) / 2, 2 * d, [&](std::size_t pair) {
    const std::size_t r = 2 * pair;
    const float* s0 = row(r);
    float m0, var0;
    if (r + 1 == rows) {  // the last row of an odd count
      row_moments(s0, d, m0, var0);
    } else {
      const float* s1 = row(r + 1);
      float m1, var1;
      row_moments_pair(s0, s1, d, m0, var0, m1, var1);
      const float rs1 = 1.f / std::sqrt(var1 + eps);
      mean[r + 1] = m1;
      rstd[r + 1] = rs1;
      normalize(s1, d, m1, rs1, w, b, y + (r + 1) * d);
    }
    const float rs0 = 1.f / std::sqrt(var0 + eps);
    mean[r] = m0;
    rstd[r] = rs0;
    normalize(s0, d, m0, rs0, w, b, y + r * d);
  });
}

void layer_norm_backward(const float* s, const float* dy, std::size_t rows, std::size_t d, const float* w,
                         const float* mean, const float* rstd, float* dx, float* dw, float* db) {
  // Rows are split into one contiguous range per thread; each thread sums its rows' dweight and
  // dbias into its own slice of `partial`, added up afterwards.
  const bool parallel = rows >= 2 && rows * d >= kParallelWork;
  const int threads = parallel ? omp_get_max_threads() : 1;
  const bool sums = dw || db;
  std::vector<float> partial(sums ? static_cast<std::size_t>(threads) * 2 * d : 0, 0.f);  // (threads, 2, D)
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const auto t = static_cast<std::size_t>(omp_get_thread_num());
    const auto nt = static_cast<std::size_t>(omp_get_num_threads());
    float* pw = sums ? partial.data() + t * 2 * d : nullptr;  // (D)
    float* pb = sums ? pw + d : nullptr;                      // (D)
    for (std::size_t r = rows * t / nt; r < rows * (t + 1) / nt; ++r) {
      const float* sr = s + r * d;
      const float* dyr = dy + r * d;
      const float m = mean[r], rs = rstd[r];
      // One pass for both sums (sum of g = dy w, sum of g xhat) and the row's dweight and dbias
      // terms (dy xhat, dy), each sum added in row_dot's order.
      float sum_g, sum_g_xhat;
      sum_pair(
          d,
          [&](std::size_t i) {
            const Vec g = load(dyr + i);
            if (pw) {
              store(pw + i, load(pw + i) + g * ((load(sr + i) - m) * rs));
              store(pb + i, load(pb + i) + g);
            }
            return g * load(w + i);
          },
          [&](std::size_t i) { return load(dyr + i) * load(w + i) * ((load(sr + i) - m) * rs); },
          [&](std::size_t i) {
            if (pw) {
              pw[i] += dyr[i] * ((sr[i] - m) * rs);
              pb[i] += dyr[i];
            }
            return dyr[i] * w[i];
          },
          [&](std::size_t i) { return dyr[i] * w[i] * ((sr[i] - m) * rs); }, sum_g, sum_g_xhat);
      if (!dx) continue;
      const float mean_g = sum_g / static_cast<float>(d);
      const float mean_g_xhat = sum_g_xhat / static_cast<float>(d);
      float* dxr = dx + r * d;
#pragma omp simd
      for (std::size_t j = 0; j < d; ++j) {
        const float xhat = (sr[j] - m) * rs;
        dxr[j] = rs * (dyr[j] * w[j] - mean_g - xhat * mean_g_xhat);
      }
    }
  }
  if (!sums) return;
  for (int t = 0; t < threads; ++t) {
    const float* pw = partial.data() + static_cast<std::size_t>(t) * 2 * d;
    for (std::size_t j = 0; j < d; ++j) {
      if (dw) dw[j] += pw[j];
      if (db) db[j] += pw[d + j];
    }
  }
}

}  // namespace xgrad::kernels
