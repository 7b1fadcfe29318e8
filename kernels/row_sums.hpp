// Sums (and the maximum) along one contiguous row with several vector accumulators: a single accumulator (what
// `omp simd reduction` gives) waits on the add's latency at every step, which for rows that sit
// in L1 costs more than reading them. The order of the additions is fixed (four interleaved
// partial sums, then the tail), so results do not depend on anything but the row.
#pragma once

#include <cstddef>
#include <limits>

#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

namespace row_sums_detail {
using vec::lanes_sum;
using vec::load;
using vec::Vec;
using vec::W;

/// sum over i < n of term(i), term(i) a vector of W elements starting at i, scalar_term(i) one.
template <class Term, class ScalarTerm>
inline float sum(std::size_t n, Term term, ScalarTerm scalar_term) {
  Vec a0 = {}, a1 = {}, a2 = {}, a3 = {};
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 += term(i);
    a1 += term(i + W);
    a2 += term(i + 2 * W);
    a3 += term(i + 3 * W);
  }
  for (; i + W <= n; i += W) a0 += term(i);
  float s = lanes_sum((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) s += scalar_term(i);
  return s;
}

/// Two such sums at once, each added in sum()'s order: the second's adds fill the first's waits.
/// For two rows, or two sums over one row. The results are sum()'s but for the scalar tail (n
/// not a multiple of W), whose multiply-adds the compiler may fuse differently: one rounding.
template <class Term0, class Term1, class Scalar0, class Scalar1>
inline void sum_pair(std::size_t n, Term0 term0, Term1 term1, Scalar0 scalar0, Scalar1 scalar1, float& s0, float& s1) {
  Vec a0 = {}, a1 = {}, a2 = {}, a3 = {}, b0 = {}, b1 = {}, b2 = {}, b3 = {};
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 += term0(i);
    b0 += term1(i);
    a1 += term0(i + W);
    b1 += term1(i + W);
    a2 += term0(i + 2 * W);
    b2 += term1(i + 2 * W);
    a3 += term0(i + 3 * W);
    b3 += term1(i + 3 * W);
  }
  for (; i + W <= n; i += W) {
    a0 += term0(i);
    b0 += term1(i);
  }
  s0 = lanes_sum((a0 + a1) + (a2 + a3));
  s1 = lanes_sum((b0 + b1) + (b2 + b3));
  for (std::size_t j = i; j < n; ++j) s0 += scalar0(j);  // one tail after the other, as sum() adds it
  for (; i < n; ++i) s1 += scalar1(i);
}
}  // namespace row_sums_detail

/// sum_i x_i
inline float row_sum(const float* x, std::size_t n) {
  using namespace row_sums_detail;
  return sum(n, [&](std::size_t i) { return load(x + i); }, [&](std::size_t i) { return x[i]; });
}

/// sum_i (x_i - c)^2
inline float row_sum_squares(const float* x, std::size_t n, float c) {
  using namespace row_sums_detail;
  return sum(
      n,
      [&](std::size_t i) {
        const Vec d = load(x + i) - c;
        return d * d;
      },
      [&](std::size_t i) { return (x[i] - c) * (x[i] - c); });
}

/// sum_i a_i b_i
inline float row_dot(const float* a, const float* b, std::size_t n) {
  using namespace row_sums_detail;
  return sum(n, [&](std::size_t i) { return load(a + i) * load(b + i); }, [&](std::size_t i) { return a[i] * b[i]; });
}

/// sum_i a_i b_i (c_i - m) r: the layer norm backward's sum of g xhat, g = dy w, xhat = (s - m) r.
inline float row_dot_centered(const float* a, const float* b, const float* c, std::size_t n, float m, float r) {
  using namespace row_sums_detail;
  return sum(
      n, [&](std::size_t i) { return load(a + i) * load(b + i) * ((load(c + i) - m) * r); },
      [&](std::size_t i) { return a[i] * b[i] * ((c[i] - m) * r); });
}

/// sum_i exp(x_i - shift), writing y_i = exp(x_i - shift) too when y is not null, for a shift at
/// least the row's maximum (x_i - shift <= 0: vec::exp_nonpositive): two vector sums (the
/// exponentials, not the adds, set the pace), the tail a vector whose missing lanes are
/// exp(-inf) = 0.
inline float row_exp_sum(const float* x, float* y, std::size_t n, float shift) {
  using namespace row_sums_detail;
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  Vec a0 = {}, a1 = {};
  vec::over_lane_pairs(n, [&](std::size_t i, std::size_t lanes, auto half) {
    const Vec e = vec::exp_nonpositive(vec::load(x + i, lanes, kMinusInf) - shift);
    if (y != nullptr) vec::store(y + i, e, lanes);
    (half ? a1 : a0) += e;
  });
  return lanes_sum(a0 + a1);
}

/// max_i x_i over one row (-inf for an empty row), four vector maxima at a time, then one. A NaN never wins
/// (callers that care count NaNs apart). Written out rather than left to `omp simd reduction(max)`,
/// whose starting value for floats is the compiler's choice: Clang's is the lowest finite float,
/// which would turn the maximum of a row of -inf into -FLT_MAX.
inline float row_max(const float* x, std::size_t n) {
  using namespace row_sums_detail;
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  float m = kMinusInf;
  std::size_t k = 0;
  if (n >= W) {
    Vec m0 = Vec{} + kMinusInf, m1 = m0, m2 = m0, m3 = m0;
    for (; k + 4 * W <= n; k += 4 * W) {
      m0 = vec::max(m0, load(x + k));
      m1 = vec::max(m1, load(x + k + W));
      m2 = vec::max(m2, load(x + k + 2 * W));
      m3 = vec::max(m3, load(x + k + 3 * W));
    }
    for (; k + W <= n; k += W) m0 = vec::max(m0, load(x + k));  // rows shorter than 4 vectors too
    m = vec::lanes_max(vec::max(vec::max(m0, m1), vec::max(m2, m3)));
  }
  for (; k < n; ++k) m = x[k] > m ? x[k] : m;
  return m;
}

}  // namespace xgrad::kernels
