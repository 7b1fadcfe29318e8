// Gradient clipping: norms of every order, the clipping coefficient, skipped parameters,
// non-finite norms, bad arguments, and independence from the thread count.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <xgrad/optim/optim.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
using namespace xgrad::optim;

namespace {

// A leaf whose gradient is `grad`.
Tensor with_grad(const std::vector<float>& grad, const Shape& shape) {
  Tensor p = zeros(shape).set_requires_grad(true);
  (p * from_vector(grad, shape)).backward(ones(shape));
  return p;
}

std::vector<float> grad_values(const Tensor& p) {
  const Array& g = p.grad().value();
  return std::vector<float>(g.begin(), g.end());
}

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("clip_grad_norm_ scales every gradient by max_norm / (total + 1e-6) when that is below 1") {
  Tensor a = with_grad({3.f, 4.f}, {2});
  Tensor b = with_grad({12.f}, {1, 1});
  const double total = clip_grad_norm_({a, b}, 6.5);
  CHECK(total == doctest::Approx(13.0));  // sqrt(9 + 16 + 144)
  const float coef = (1.f / (13.f + 1e-6f)) * 6.5f;
  CHECK(grad_values(a) == std::vector<float>{3.f * coef, 4.f * coef});
  CHECK(grad_values(b) == std::vector<float>{12.f * coef});
  CHECK(grad_values(a)[0] == doctest::Approx(1.5f));
}

TEST_CASE("clip_grad_norm_ leaves gradients untouched when the total is within max_norm") {
  Tensor a = with_grad({3.f, -4.f}, {2});
  CHECK(clip_grad_norm_({a}, 5.0 + 1e-3) == doctest::Approx(5.0));
  CHECK(grad_values(a) == std::vector<float>{3.f, -4.f});
}

TEST_CASE("clip_grad_norm_ of order inf, 1 and 3") {
  {
    Tensor a = with_grad({3.f, -7.f}, {2});
    Tensor b = with_grad({5.f}, {1});
    CHECK(clip_grad_norm_({a, b}, 3.5, kInf) == 7.0);
    CHECK(grad_values(a)[1] == doctest::Approx(-3.5f));
    CHECK(grad_values(b)[0] == doctest::Approx(2.5f));
  }
  {
    Tensor a = with_grad({3.f, -7.f}, {2});
    Tensor b = with_grad({5.f}, {1});
    CHECK(clip_grad_norm_({a, b}, 30.0, 1.0) == 15.0);
    CHECK(grad_values(a) == std::vector<float>{3.f, -7.f});
  }
  {
    Tensor a = with_grad({1.f, -2.f}, {2});
    Tensor b = with_grad({3.f}, {1});
    const double expected = std::cbrt(1.0 + 8.0 + 27.0);
    CHECK(clip_grad_norm_({a, b}, expected / 2, 3.0) == doctest::Approx(expected));
    CHECK(grad_values(b)[0] == doctest::Approx(1.5f));
  }
}

TEST_CASE("clip_grad_norm_ skips parameters without a gradient and returns 0 when none has one") {
  Tensor a = with_grad({6.f, 8.f}, {2});
  Tensor none = zeros({3}).set_requires_grad(true);
  CHECK(clip_grad_norm_({none, a}, 5.0) == doctest::Approx(10.0));
  CHECK(grad_values(a)[1] == doctest::Approx(4.f));
  CHECK_FALSE(none.grad().defined());
  CHECK(clip_grad_norm_({none}, 1.0) == 0.0);
  CHECK(clip_grad_norm_({}, 1.0) == 0.0);
}

TEST_CASE("grad_norm is the total norm clip_grad_norm_ returns, without touching the gradients") {
  Tensor a = with_grad({3.f, 4.f}, {2});
  Tensor b = with_grad({12.f}, {1});
  Tensor none = zeros({3}).set_requires_grad(true);
  CHECK(grad_norm({a, none, b}) == doctest::Approx(13.0));
  CHECK(grad_norm({a, b}, kInf) == 12.0);
  CHECK(grad_norm({a}, 1.0) == doctest::Approx(7.0));
  CHECK(grad_values(a)[1] == 4.f);
  CHECK(grad_norm({none}) == 0.0);
  Tensor bad = with_grad({1.f, NAN}, {2});
  CHECK(std::isnan(grad_norm({a, bad})));
  Tensor huge = with_grad({INFINITY}, {1});
  CHECK(grad_norm({huge}) == kInf);
  CHECK_THROWS_WITH_AS(grad_norm({a}, -1.0), doctest::Contains("grad_norm: invalid norm_type: -1"), Error);
}

TEST_CASE("clip_grad_norm_ with a non-finite total: an Error if asked, else NaN gradients as torch") {
  Tensor a = with_grad({1.f, NAN}, {2});
  CHECK_THROWS_WITH_AS(clip_grad_norm_({a}, 1.0, 2.0, /*error_if_nonfinite=*/true),
                       doctest::Contains("clip_grad_norm_: the total norm of order 2 of the gradients is nan"), Error);
  CHECK(grad_values(a)[0] == 1.f);  // untouched by the failed call
  CHECK(std::isnan(clip_grad_norm_({a}, 1.0)));
  CHECK(std::isnan(grad_values(a)[0]));

  Tensor b = with_grad({1.f, INFINITY}, {2});
  CHECK_THROWS_WITH_AS(clip_grad_norm_({b}, 1.0, kInf, true), doctest::Contains("of order inf of the gradients is inf"),
                       Error);
  CHECK(clip_grad_norm_({b}, 1.0, kInf) == kInf);
  CHECK(grad_values(b)[0] == 0.f);  // scaled by max_norm / inf = 0
}

TEST_CASE("clip_grad_norm_ rejects a bad max_norm or norm_type") {
  Tensor a = with_grad({1.f}, {1});
  CHECK_THROWS_WITH_AS(clip_grad_norm_({a}, -1.0), doctest::Contains("clip_grad_norm_: invalid max_norm: -1"), Error);
  CHECK_THROWS_WITH_AS(clip_grad_norm_({a}, NAN), doctest::Contains("invalid max_norm: nan"), Error);
  CHECK_THROWS_WITH_AS(clip_grad_norm_({a}, 1.0, 0.0), doctest::Contains("clip_grad_norm_: invalid norm_type: 0"), Error);
  CHECK_THROWS_WITH_AS(clip_grad_norm_({a}, 1.0, -kInf), doctest::Contains("invalid norm_type: -inf"), Error);
  CHECK_THROWS_WITH_AS(clip_grad_norm_({a, Tensor()}, 1.0), doctest::Contains("parameter 1 is undefined"), Error);
}

TEST_CASE("clip_grad_norm_ on large gradients: accurate, and the same with 1 or 2 threads") {
  const std::size_t n = 300001;  // several fixed chunks, above the parallel threshold
  std::vector<float> values(n);
  double sum = 0.0;
  for (std::size_t k = 0; k < n; ++k) {
    values[k] = static_cast<float>(std::sin(0.001 * k) * 3.0);
    sum += static_cast<double>(values[k]) * values[k];
  }
  const int threads = get_num_threads();
  std::vector<double> totals;
  std::vector<std::vector<float>> clipped;
  for (int n_threads : {1, 2}) {
    set_num_threads(n_threads);
    Tensor p = with_grad(values, {n});
    totals.push_back(clip_grad_norm_({p}, 1.0));
    clipped.push_back(grad_values(p));
  }
  set_num_threads(threads);
  CHECK(totals[0] == doctest::Approx(std::sqrt(sum)).epsilon(1e-12));
  CHECK(totals[0] == totals[1]);
  CHECK(clipped[0] == clipped[1]);
}

TEST_CASE("clip_grad_value_ clamps every gradient element into [-c, c]; NaN stays NaN") {
  Tensor a = with_grad({-3.f, -0.5f, 0.25f, 2.f}, {2, 2});
  Tensor b = with_grad({NAN, 1.5f}, {2});
  Tensor none = zeros({1}).set_requires_grad(true);
  clip_grad_value_({a, none, b}, 1.0);
  CHECK(grad_values(a) == std::vector<float>{-1.f, -0.5f, 0.25f, 1.f});
  CHECK(std::isnan(grad_values(b)[0]));
  CHECK(grad_values(b)[1] == 1.f);
  CHECK_FALSE(none.grad().defined());
  clip_grad_value_({a}, 0.0);
  CHECK(grad_values(a) == std::vector<float>{-0.f, -0.f, 0.f, 0.f});
  CHECK_THROWS_WITH_AS(clip_grad_value_({a}, -0.1), doctest::Contains("clip_grad_value_: invalid clip_value: -0.1"),
                       Error);
}
