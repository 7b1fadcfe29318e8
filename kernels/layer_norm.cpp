// layer_norm_forward and layer_norm_backward: one pass per row while it sits in L1, rows over the
// threads; the backward's weight and bias sums per thread, added up at the end.
#include <xgrad/kernels/layer_norm.hpp>

#include <cmath>
#include <vector>

#include <omp.h>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>

namespace xgrad::kernels {

namespace {

/// Mean and biased variance of one row, in two passes over it.
inline void row_moments(const float* x, std::size_t d, float& mean, float& var) {
  mean = row_sum(x, d) / static_cast<float>(d);
  var = row_sum_squares(x, d, mean) / static_cast<float>(d);
}

}  // namespace

void layer_norm_forward(const float* x, const float* residual, float* sum, std::size_t rows, std::size_t d,
                        const float* w, const float* b, float eps, float* mean, float* rstd, float* y) {
  parallel_rows(rows, d, [&](std::size_t r) {
    const float* sr = x + r * d;
    if (residual) {  // s = x + residual, formed in the row's pass
      float* out = sum + r * d;
      const float* rr = residual + r * d;
#pragma omp simd
      for (std::size_t j = 0; j < d; ++j) out[j] = sr[j] + rr[j];
      sr = out;
    }
    float* yr = y + r * d;
    float m, var;
    row_moments(sr, d, m, var);
    const float rs = 1.f / std::sqrt(var + eps);
    mean[r] = m;
    rstd[r] = rs;
#pragma omp simd
    for (std::size_t j = 0; j < d; ++j) yr[j] = (sr[j] - m) * rs * w[j] + b[j];
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
      if (pw) {
#pragma omp simd
        for (std::size_t j = 0; j < d; ++j) {
          pw[j] += dyr[j] * ((sr[j] - m) * rs);
          pb[j] += dyr[j];
        }
      }
      const float sum_g = row_dot(dyr, w, d);                            // sum of g = dy w
      const float sum_g_xhat = row_dot_centered(dyr, w, sr, d, m, rs);  // sum of g xhat
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
