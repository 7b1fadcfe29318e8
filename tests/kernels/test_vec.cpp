// vec::exp against exp in double (at most 1.25 ulp over the whole float range where exp(x) is a
// normal float, the special values exact), vec::exp_nonpositive against vec::exp,
// vec::add_exp against exp in double, and the loads
// and stores of part of a vector, the sums and maxima across lanes of W vectors at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <xgrad/kernels/vec.hpp>

using namespace xgrad::kernels;

namespace {

/// exp of one float through vec::exp, the value in every lane.
float vec_exp(float x) {
  const vec::Vec e = vec::exp(vec::Vec{} + x);
  for (std::size_t i = 1; i < vec::W; ++i) REQUIRE((e[i] == e[0] || (std::isnan(e[i]) && std::isnan(e[0]))));
  return e[0];
}

/// |a - b| in units of the last place of the float nearest b.
double ulps(float a, double b) {
  const float nearest = static_cast<float>(b);
  const double ulp = std::nextafter(nearest, std::numeric_limits<float>::infinity()) - nearest;
  return std::fabs(a - b) / ulp;
}

}  // namespace

TEST_CASE("vec::exp: within 1.25 ulp of exp in double from -87.3 to 88") {
  double worst = 0;
  float worst_at = 0;
  for (float x = -87.3f; x < 88.f; x += 0.0037f) {
    const double error = ulps(vec_exp(x), std::exp(static_cast<double>(x)));
    if (error > worst) worst = error, worst_at = x;
  }
  for (const float x : {0.f, 1e-8f, -1e-8f, 0.34657f, -0.34657f, 1.f, -1.f}) {
    const double error = ulps(vec_exp(x), std::exp(static_cast<double>(x)));
    if (error > worst) worst = error, worst_at = x;
  }
  CAPTURE(worst_at);
  CHECK(worst <= 1.25);  // 1.07 at worst over every float, on each path
  CHECK(vec_exp(0.f) == 1.f);
}

TEST_CASE("vec::exp: 0 for -inf and below the normal floats, +inf for +inf and above, NaN for NaN") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(vec_exp(-inf) == 0.f);
  CHECK(vec_exp(-88.f) == 0.f);
  CHECK(vec_exp(-1e30f) == 0.f);
  CHECK(vec_exp(inf) == inf);
  CHECK(vec_exp(89.f) == inf);
  CHECK(vec_exp(1e30f) == inf);
  CHECK(std::isnan(vec_exp(std::nanf(""))));
  CHECK(vec_exp(-87.f) > 0.f);
  CHECK(std::isfinite(vec_exp(88.f)));
}

TEST_CASE("vec::exp: lanes are independent (each lane its own x)") {
  vec::Vec x;
  for (std::size_t i = 0; i < vec::W; ++i) x[i] = -3.f + 0.5f * static_cast<float>(i);
  x[1] = -std::numeric_limits<float>::infinity();
  const vec::Vec e = vec::exp(x);
  for (std::size_t i = 0; i < vec::W; ++i) {
    CAPTURE(i);
    CHECK(e[i] == vec_exp(x[i]));
  }
  CHECK(e[1] == 0.f);
}

TEST_CASE("vec::exp_nonpositive: exp's numbers below 88, -inf and NaN included") {
  std::vector<float> xs = {-std::numeric_limits<float>::infinity(), -1e30f, -88.f, -87.f, -1.f, -0.f, 0.f, 1.f, 87.f};
  for (float x = -100.f; x < 88.f; x += 0.0137f) xs.push_back(x);
  for (const float x : xs) {
    CAPTURE(x);
    const float a = vec::exp_nonpositive(vec::Vec{} + x)[0], b = vec_exp(x);
    CHECK(a == b);
  }
  CHECK(std::isnan(vec::exp_nonpositive(vec::Vec{} + std::nanf(""))[0]));
}

TEST_CASE("vec::add_exp: sum + exp(a x) within 3 ulp from -87.3 to 88, 0 below to -2e26, never a wrong finite sum") {
  const double a = vec::kAddExpScale;
  CHECK(std::fabs(a - 1) < 1.34e-8);
  double worst_ulps = 0;
  float worst_at = 0;
  for (float x = -87.3f; x <= 88.f; x += 0.00071f) {  // with AVX-512 to 88.7, without to 88
    const double u = ulps(vec::add_exp(vec::Vec{}, vec::Vec{} + x)[0], std::exp(a * x));
    if (u > worst_ulps) worst_ulps = u, worst_at = x;
  }
  CAPTURE(worst_at);
  MESSAGE("worst " << worst_ulps << " ulp at " << worst_at);
  CHECK(worst_ulps <= 3.0);
  // The term is added to the sum in one rounding: 1 at 0 exactly, and onto any sum.
  CHECK(vec::add_exp(vec::Vec{} + 5.f, vec::Vec{})[0] == 6.f);
  const float x = -0.3f, e = vec::add_exp(vec::Vec{}, vec::Vec{} + x)[0];
  CHECK(vec::add_exp(vec::Vec{} + 0.125f, vec::Vec{} + x)[0] == doctest::Approx(0.125f + e).epsilon(1e-7));
  for (float y = -104.f; y > -2e26f; y *= 1.01f) {
    CAPTURE(y);
    CHECK(vec::add_exp(vec::Vec{} + 1.f, vec::Vec{} + y)[0] == 1.f);
  }
  // Above 88.7 the sum overflows (above 88 without AVX-512); +inf and NaN make it +inf or NaN;
  // -inf and x below -2e26 add 0 (without AVX-512) or make it NaN: a caller that tests the sum
  // never takes a wrong one.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (float y : {88.8f, 100.f, 1e10f, 3e38f, kInf, std::nanf("")}) {
    CAPTURE(y);
    CHECK(!std::isfinite(vec::add_exp(vec::Vec{} + 1.f, vec::Vec{} + y)[0]));
  }
  for (float y : {-1e27f, -1e30f, -3e38f, -kInf}) {
    CAPTURE(y);
    const float s = vec::add_exp(vec::Vec{} + 1.f, vec::Vec{} + y)[0];
    CHECK((s == 1.f || !std::isfinite(s)));
  }
}

TEST_CASE("load and store of n lanes: the other lanes are the fill, nothing past n is touched") {
  for (std::size_t n = 0; n <= vec::W; ++n) {
    CAPTURE(n);
    std::vector<float> in(vec::W, 0.f), out(vec::W + 1, -7.f);
    for (std::size_t i = 0; i < n; ++i) in[i] = static_cast<float>(i + 1);
    const vec::Vec v = vec::load(in.data(), n, 42.f);
    for (std::size_t i = 0; i < vec::W; ++i) CHECK(v[i] == (i < n ? static_cast<float>(i + 1) : 42.f));
    vec::store(out.data(), v, n);
    for (std::size_t i = 0; i <= vec::W; ++i) CHECK(out[i] == (i < n ? static_cast<float>(i + 1) : -7.f));
  }
}

TEST_CASE("over_lanes: every element once, whole vectors then one tail") {
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 33u, 100u}) {
    CAPTURE(size);
    std::vector<int> seen(size, 0);
    std::size_t calls = 0;
    vec::over_lanes(size, [&](std::size_t i, std::size_t n) {
      REQUIRE(n >= 1);
      REQUIRE(n <= vec::W);
      REQUIRE(i + n <= size);
      for (std::size_t j = 0; j < n; ++j) ++seen[i + j];
      ++calls;
    });
    for (const int s : seen) CHECK(s == 1);
    CHECK(calls == (size + vec::W - 1) / vec::W);
  }
}

TEST_CASE("over_lane_pairs: every element once, whole vectors in pairs (halves 0 and 1), then the tail in half 0") {
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 33u, 48u, 49u, 100u}) {
    CAPTURE(size);
    std::vector<int> seen(size, 0);
    std::vector<std::size_t> halves(size, 9);
    vec::over_lane_pairs(size, [&](std::size_t i, std::size_t n, auto half) {
      REQUIRE(n >= 1);
      REQUIRE(n <= vec::W);
      REQUIRE(i + n <= size);
      for (std::size_t j = 0; j < n; ++j) ++seen[i + j], halves[i + j] = half;
    });
    const std::size_t paired = size / (2 * vec::W) * 2 * vec::W;
    for (std::size_t i = 0; i < size; ++i) {
      CAPTURE(i);
      CHECK(seen[i] == 1);
      CHECK(halves[i] == (i < paired ? i / vec::W % 2 : 0u));  // the sums a lane goes into fix their order
    }
  }
}

TEST_CASE("vec::max: the larger lane, a NaN never wins, -inf loses to any number") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  vec::Vec acc = {}, v = {};
  for (std::size_t i = 0; i < vec::W; ++i) acc[i] = -inf, v[i] = static_cast<float>(i) - 2.f;
  v[0] = nan;
  const vec::Vec m = vec::max(acc, v);
  CHECK(m[0] == -inf);  // NaN against the running maximum: the maximum stays
  for (std::size_t i = 1; i < vec::W; ++i) CHECK(m[i] == static_cast<float>(i) - 2.f);
  const vec::Vec back = vec::max(v, acc);  // -inf never wins; a NaN already held is kept
  CHECK(std::isnan(back[0]));
  for (std::size_t i = 1; i < vec::W; ++i) CHECK(back[i] == static_cast<float>(i) - 2.f);
}

TEST_CASE("vec::above: one bit per lane above t, lowest lane lowest bit, NaN and equal lanes not set") {
  vec::Vec v = {};
  for (std::size_t i = 0; i < vec::W; ++i) v[i] = static_cast<float>(i % 3);  // 0 1 2 0 1 2 ...
  v[vec::W - 1] = std::numeric_limits<float>::quiet_NaN();
  unsigned expected = 0;
  for (std::size_t i = 0; i + 1 < vec::W; ++i) expected |= (i % 3 == 2 ? 1u : 0u) << i;
  CHECK(vec::above(v, 1.f) == expected);
  CHECK(vec::above(v, 2.f) == 0u);
  CHECK(vec::above(v, -std::numeric_limits<float>::infinity()) == (1u << (vec::W - 1)) - 1);
}

TEST_CASE("vec::lanes_sums and vec::lanes_maxes: lane i the sum and the largest of v[i]'s lanes") {
  const float inf = std::numeric_limits<float>::infinity();
  vec::Vec v[vec::W];
  for (std::size_t i = 0; i < vec::W; ++i) {
    for (std::size_t j = 0; j < vec::W; ++j) v[i][j] = static_cast<float>((7 * i + 3 * j) % 11) - 5.f + 0.25f * j;
  }
  v[1] = vec::Vec{} - inf;  // a row masked out entirely
  v[2][vec::W - 1] = 100.f;  // its maximum in the last lane
  v[3][0] = 50.f;            // and in the first
  const vec::Vec sums = vec::lanes_sums(v), maxes = vec::lanes_maxes(v);
  for (std::size_t i = 0; i < vec::W; ++i) {
    CAPTURE(i);
    float max = -inf;
    double sum = 0;
    for (std::size_t j = 0; j < vec::W; ++j) max = std::max(max, v[i][j]), sum += v[i][j];
    CHECK(maxes[i] == max);
    if (i == 1) CHECK(sums[i] == -inf);
    else CHECK(sums[i] == doctest::Approx(sum).epsilon(1e-6));
  }
}
