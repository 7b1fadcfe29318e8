// row_sum, row_sum_squares, row_dot, row_dot_centered and row_exp_sum against sums in double, for
// lengths around the blocks of four vectors and their tails; a fixed order, so the same row sums
// the same.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <xgrad/kernels/row_sums.hpp>

using namespace xgrad::kernels;

TEST_CASE("row sums against double, every length from 0 to 140 and a long row") {
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 140; ++n) lengths.push_back(n);
  lengths.push_back(4099);
  for (const std::size_t n : lengths) {
    std::vector<float> a(n), b(n), c(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = std::sin(0.7f * i + 0.1f), b[i] = std::cos(0.3f * i), c[i] = 0.5f + std::sin(1.3f * i);
    }
    double sum = 0, squares = 0, dot = 0, centered = 0;
    const float m = 0.25f, r = 1.5f;
    for (std::size_t i = 0; i < n; ++i) {
      sum += a[i];
      squares += (double(a[i]) - m) * (double(a[i]) - m);
      dot += double(a[i]) * b[i];
      centered += double(a[i]) * b[i] * ((double(c[i]) - m) * r);
    }
    const double tolerance = 1e-5 * (1.0 + std::sqrt(double(n)));
    CAPTURE(n);
    CHECK(std::fabs(row_sum(a.data(), n) - sum) < tolerance);
    CHECK(std::fabs(row_sum_squares(a.data(), n, m) - squares) < tolerance);
    CHECK(std::fabs(row_dot(a.data(), b.data(), n) - dot) < tolerance);
    CHECK(std::fabs(row_dot_centered(a.data(), b.data(), c.data(), n, m, r) - centered) < tolerance);
    CHECK(row_sum(a.data(), n) == row_sum(a.data(), n));  // deterministic
  }
}

TEST_CASE("row_max: the largest element at every length, -inf for a row of -inf or none, a NaN never wins") {
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t n : {0u, 1u, 7u, 31u, 32u, 33u, 64u, 100u}) {
    CAPTURE(n);
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) - 2.f;
    float expected = -inf;
    for (const float v : x) expected = v > expected ? v : expected;
    CHECK(row_max(x.data(), n) == expected);
    std::vector<float> masked(n, -inf);  // a row whose keys are all masked
    CHECK(row_max(masked.data(), n) == -inf);
    if (n > 1) {
      x[n / 2] = std::nanf("");
      CHECK(row_max(x.data(), n) == row_max(x.data(), n));  // not NaN
      masked[n - 1] = 3.f;
      CHECK(row_max(masked.data(), n) == 3.f);
    }
  }
}

TEST_CASE("row_exp_sum: the sum of exp(x - shift) and, when asked, each term, at every length") {
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t n = 0; n <= 70; ++n) {
    CAPTURE(n);
    std::vector<float> x(n), y(n + 1, -7.f);
    for (std::size_t i = 0; i < n; ++i) x[i] = 3.f * std::sin(0.9f * static_cast<float>(i));
    if (n > 3) x[2] = -inf;  // a masked score: no weight
    const float shift = 1.25f;
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - shift);
    const float got = row_exp_sum(x.data(), y.data(), n, shift);
    CHECK(std::fabs(got - sum) <= 1e-6 * (1.0 + sum));
    CHECK(row_exp_sum(x.data(), nullptr, n, shift) == got);
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      const double e = std::exp(double(x[i]) - shift);
      CHECK(std::fabs(y[i] - e) <= 3e-7 * e);
    }
    CHECK(y[n] == -7.f);  // nothing written past the row
  }
}
