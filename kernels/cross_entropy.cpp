// Cross-entropy over rows of logits: each row's maximum, then its sum of exponentials (and, with
// label smoothing, its plain sum), the second pass over a row taking the next row's maximum; the
// sum's terms by vec::exp_of_sum_term, a row whose sum is not finite summed again with care;
// backward recomputes the probabilities from the logits in the same pass that writes dx. Rows go
// to the threads when there are many logits.
#include <xgrad/kernels/cross_entropy.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>
#include <xgrad/kernels/vec.hpp>
#include <xgrad/kernels/with_flag.hpp>

namespace xgrad::kernels {

namespace {

/// out_c = exp(x_c - shift) * scale - offset over one row of C logits.
void scaled_exp(const float* x, float* out, std::size_t C, float shift, float scale, float offset) {
  vec::over_lanes(C, [&](std::size_t c, std::size_t lanes) {
    vec::store(out + c, vec::exp_nonpositive(vec::load(x + c, lanes, 0.f) - shift) * scale - offset, lanes);
  });
}

/// The forward of rows [begin, end) whose target is not `ignore`: for each, m = max x, lse = m +
/// log sum exp(x - m), with label smoothing the plain sum too, then the loss. Pipelined: the pass
/// over a row's logits that takes their exponentials also takes the next row's maximum, bringing
/// that row in from memory while the exponentials keep the core busy.
void forward_run(const float* x, const std::int64_t* t, std::size_t begin, std::size_t end, std::size_t C,
                 std::int64_t ignore, float eps, float* lse, float* loss) {
  using vec::load;
  using vec::Vec;
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  const auto next_row = [&](std::size_t n) {  // the first row from n on that is not ignored
    while (n < end && t[n] == ignore) ++n;
    return n;
  };
  std::size_t n = next_row(begin);
  if (n == end) return;
  float m = row_max(x + n * C, C);
  while (n < end) {
    const std::size_t next = next_row(n + 1);
    const float* row = x + n * C;              // (C)
    const float* ahead = x + next * C;         // (C), read only when next < end
    Vec e0 = {}, e1 = {}, sum0 = {}, sum1 = {}, m0 = Vec{} + kMinusInf, m1 = m0;  // the two halves
    // The pass, with the plain sum (label smoothing) and the next row's maximum known to be taken
    // or not: no test of either in the loop.
    const auto pass = [&](auto smoothing, auto ahead_exists) {
      vec::over_lane_pairs(C, [&](std::size_t c, std::size_t lanes, auto half) {
        // The lanes past the row's end get m - 200, whose term is 0 (exp_of_sum_term has no case
        // for -inf). Where m - 200 rounds to m (m above 2^32) they add 1 each, which moves
        // log sum exp by less than half an ulp of m: the result is the same float.
        (half ? e1 : e0) += vec::exp_of_sum_term(load(row + c, lanes, m - 200.f) - m);
        if (smoothing) (half ? sum1 : sum0) += load(row + c, lanes, 0.f);
        if (ahead_exists) {
          Vec& mh = half ? m1 : m0;
          mh = vec::max(mh, load(ahead + c, lanes, kMinusInf));
        }
      });
    };
    with_flag(eps > 0.f, [&](auto smoothing) {
      with_flag(next < end, [&](auto ahead_exists) { pass(smoothing, ahead_exists); });
    });
    float z = vec::lanes_sum(e0 + e1);
    // A row with -inf, NaN or logits far below its maximum: its sum again, each term with care.
    if (!std::isfinite(z)) z = row_exp_sum(row, nullptr, C, m);
    const float log_z = m + std::log(z);
    lse[n] = log_z;
    float l = log_z - row[t[n]];
    if (eps > 0.f) l = (1.f - eps) * l + eps * (log_z - vec::lanes_sum(sum0 + sum1) / static_cast<float>(C));
    loss[n] = l;
    if (next < end) m = vec::lanes_max(vec::max(m0, m1));
    n = next;
  }
}

}  // namespace

void cross_entropy_forward(const float* x, const std::int64_t* t, std::size_t N, std::size_t C,
                           std::int64_t ignore, float eps, float* lse, float* loss) {
  parallel_row_runs(N, C, [&](std::size_t first, std::size_t count) {
    forward_run(x, t, first, first + count, C, ignore, eps, lse, loss);
  });
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
