// Cross-entropy over rows of logits: each row's maximum, then its sum of exponentials (and, with
// label smoothing, its plain sum); backward recomputes the probabilities from the logits in the
// same pass that writes dx. Rows go to the threads when there are many logits.
#include <xgrad/kernels/cross_entropy.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>
#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

namespace {

/// out_c = exp(x_c - shift) * scale - offset over one row of C logits.
void scaled_exp(const float* x, float* out, std::size_t C, float shift, float scale, float offset) {
  vec::over_lanes(C, [&](std::size_t c, std::size_t lanes) {
    vec::store(out + c, vec::exp(vec::load(x + c, lanes, 0.f) - shift) * scale - offset, lanes);
  });
}

}  // namespace

void cross_entropy_forward(const float* x, const std::int64_t* t, std::size_t N, std::size_t C,
                           std::int64_t ignore, float eps, float* lse, float* loss) {
  const auto rows = static_cast<std::ptrdiff_t>(N);
#pragma omp parallel for schedule(static) if (N * C > kParallelWork)
  for (std::ptrdiff_t n = 0; n < rows; ++n) {
    if (t[n] == ignore) continue;
    const float* row = x + n * C;  // (C)
    const float m = row_max(row, C);
    const float log_z = m + std::log(row_exp_sum(row, nullptr, C, m));
    lse[n] = log_z;
    float l = log_z - row[t[n]];
    if (eps > 0.f) l = (1.f - eps) * l + eps * (log_z - row_sum(row, C) / static_cast<float>(C));
    loss[n] = l;
  }
}

void cross_entropy_backward(const float* x, const std::int64_t* t, const float* lse, const float* scale, std::size_t N,
                            std::size_t C, std::int64_t ignore, float eps, float* dx) {
  const float smooth = eps / static_cast<float>(C);
  const auto rows = static_cast<std::ptrdiff_t>(N);
#pragma omp parallel for schedule(static) if (N * C > kParallelWork)
  for (std::ptrdiff_t n = 0; n < rows; ++n) {
    float* d = dx + n * C;  // (C)
    if (t[n] == ignore) {
      std::fill(d, d + C, 0.f);
      continue;
    }
    const float s = scale[n];
    scaled_exp(x + n * C, d, C, lse[n], s, smooth * s);
    d[t[n]] -= (1.f - eps) * s;
  }
}

}  // namespace xgrad::kernels
