// Cross-entropy over rows of logits with xsimd batches: each row's maximum, then its sum of
// exponentials and its plain sum in one pass; backward recomputes the probabilities from the
// logits in the same pass that writes dx. Rows go to the threads when there are many logits.
#include <xgrad/kernels/cross_entropy.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <xsimd/xsimd.hpp>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>

namespace xgrad::kernels {

namespace {

using Batch = xsimd::batch<float>;
constexpr std::size_t kWidth = Batch::size;

// --- row kernels: sum of exponentials and sum over one contiguous row (the maximum: row_max) ----

/// sum_c exp(x_c - shift), and sum_c x_c.
void row_sums(const float* x, std::size_t C, float shift, float& sum_exp, float& sum) {
  Batch acc_exp(0.f), acc(0.f);
  const Batch b_shift(shift);
  std::size_t c = 0;
  for (; c + kWidth <= C; c += kWidth) {
    const Batch v = Batch::load_unaligned(x + c);
    acc_exp += xsimd::exp(v - b_shift);
    acc += v;
  }
  sum_exp = xsimd::hadd(acc_exp);
  sum = xsimd::hadd(acc);
  for (; c < C; ++c) {
    sum_exp += std::exp(x[c] - shift);
    sum += x[c];
  }
}

/// out_c = exp(x_c - shift) * scale - offset.
void scaled_exp(const float* x, float* out, std::size_t C, float shift, float scale, float offset) {
  const Batch b_shift(shift), b_scale(scale), b_offset(offset);
  std::size_t c = 0;
  for (; c + kWidth <= C; c += kWidth) {
    const Batch v = Batch::load_unaligned(x + c);
    (xsimd::exp(v - b_shift) * b_scale - b_offset).store_unaligned(out + c);
  }
  for (; c < C; ++c) out[c] = std::exp(x[c] - shift) * scale - offset;
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
    float sum_exp, sum;
    row_sums(row, C, m, sum_exp, sum);
    const float log_z = m + std::log(sum_exp);
    lse[n] = log_z;
    float l = log_z - row[t[n]];
    if (eps > 0.f) l = (1.f - eps) * l + eps * (log_z - sum / static_cast<float>(C));
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
