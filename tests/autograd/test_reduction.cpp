// Reductions: sum, mean, var, max, argmax -- values, gradients for every axis variant, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xstrided_view.hpp>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {



/// Checks shape and values (to a relative 1e-5) of an array.
void check_values(const Array& actual, const Shape& shape, const std::vector<float>& expected) {
  REQUIRE(shape_of(actual) == shape);
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(actual.data()[i] == doctest::Approx(expected[i]).epsilon(1e-5));
  }
}

void check_indices(const Indices& actual, const Shape& shape, const std::vector<std::int64_t>& expected) {
  REQUIRE(Shape(actual.shape().begin(), actual.shape().end()) == shape);
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(actual.data()[i] == expected[i]);
  }
}

/// [[1,2,3],[4,5,6]]
Tensor small() { return from_vector({1, 2, 3, 4, 5, 6}, {2, 3}); }

/// 24 distinct values, at least 0.1 apart (so that a finite-difference step cannot change which
/// is the largest), in shuffled order, shape [2,3,4].
Tensor distinct_3d() {
  std::vector<float> v(24);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * static_cast<float>((i * 7) % 24) - 1.f;
  return from_vector(v, {2, 3, 4}).set_requires_grad(true);
}

std::string axes_str(const std::vector<std::int64_t>& axes) {
  std::string out = "[";
  for (std::size_t i = 0; i < axes.size(); ++i) out += (i ? "," : "") + std::to_string(axes[i]);
  return out + "]";
}

Tensor max_values(const Tensor& x, std::int64_t axis, bool keepdim) { return std::get<0>(max(x, axis, keepdim)); }

}  // namespace

// --- sum -----------------------------------------------------------------------------------------

TEST_CASE("sum over everything and over each axis") {
  check_values(sum(small()).value(), {}, {21});
  check_values(sum(small(), {0}).value(), {3}, {5, 7, 9});
  check_values(sum(small(), {1}).value(), {2}, {6, 15});
  check_values(sum(small(), {-1}, true).value(), {2, 1}, {6, 15});
  check_values(sum(small(), {0}, true).value(), {1, 3}, {5, 7, 9});
  check_values(sum(small(), {0, 1}).value(), {}, {21});
  check_values(sum(small(), {-2, -1}, true).value(), {1, 1}, {21});
}

TEST_CASE("sum with an empty axis list reduces every axis, as PyTorch's dim=[]") {
  check_values(sum(small(), {}).value(), {}, {21});
  check_values(sum(small(), {}, true).value(), {1, 1}, {21});
  check_values(mean(small(), {}).value(), {}, {3.5f});
}

TEST_CASE("sum over two axes that are not adjacent") {
  // x(i,j,k) = 12i + 4j + k: the sum over i and k is 60 + 32j.
  Array values = arange(24.f).value();
  values.reshape({2, 3, 4});
  Tensor x(values);
  check_values(sum(x, {0, 2}).value(), {3}, {60, 92, 124});
  check_values(sum(x, {2, 0}, true).value(), {1, 3, 1}, {60, 92, 124});
  check_values(sum(x, {-3, -1}).value(), {3}, {60, 92, 124});
  // Over the middle axis: x(i,:,k) sums to 36i + 12 + 3k.
  check_values(sum(x, {1}).value(), {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
}

TEST_CASE("sum of a 0-d tensor over axis 0 is the tensor, as in PyTorch") {
  check_values(sum(scalar_tensor(3.f), {0}).value(), {}, {3});
  check_values(sum(scalar_tensor(3.f), {-1}, true).value(), {}, {3});
}

TEST_CASE("sums over an empty axis are 0, means NaN, as PyTorch") {
  check_values(sum(zeros({0, 3}), {0}).value(), {3}, {0, 0, 0});
  CHECK(std::isnan(mean(zeros({0, 3}), {0}).value()(1)));
  check_values(sum(zeros({0, 3}), {1}).value(), {0}, {});
}

TEST_CASE("a long sum is accurate (accumulated in double)") {
  // 0.1f a million times: a float running sum drifts to about 100958.
  check_values(sum(full({1000000}, 0.1f)).value(), {}, {100000.0015f});
  Tensor columns = sum(full({1000, 1000}, 0.1f), {0});
  CHECK(columns.value()(0) == doctest::Approx(100.f).epsilon(1e-6));
  CHECK(columns.value()(999) == doctest::Approx(100.f).epsilon(1e-6));
  check_values(mean(full({2, 500000}, 0.1f), {1}).value(), {2}, {0.1f, 0.1f});
}

TEST_CASE("sum backward broadcasts the gradient back over the reduced axes") {
  Tensor x = randn({2, 3, 4}).set_requires_grad(true);
  sum(x, {1}).backward(from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}));
  const Array& g = x.grad().value();
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(g(0, j, 0) == 1.f);
    CHECK(g(0, j, 3) == 4.f);
    CHECK(g(1, j, 2) == 7.f);
  }
}

TEST_CASE("gradcheck: sum") {
  Tensor x = randn({2, 3, 4}).set_requires_grad(true);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); }, {x}));
  for (bool keepdim : {false, true}) {
    CAPTURE(keepdim);
    for (std::vector<std::int64_t> axes : std::vector<std::vector<std::int64_t>>{
             {0}, {1}, {2}, {-1}, {-2}, {0, 2}, {1, 2}, {0, 1}, {-3, -1}, {0, 1, 2}, {}}) {
      CAPTURE(axes_str(axes));
      CHECK(gradcheck([&](const std::vector<Tensor>& in) { return sum(in[0], axes, keepdim); }, {x}));
    }
  }
}

// --- mean ----------------------------------------------------------------------------------------

TEST_CASE("mean over everything and over each axis") {
  check_values(mean(small()).value(), {}, {3.5f});
  check_values(mean(small(), {0}).value(), {3}, {2.5f, 3.5f, 4.5f});
  check_values(mean(small(), {-1}, true).value(), {2, 1}, {2, 5});
  check_values(mean(small(), {0, 1}, true).value(), {1, 1}, {3.5f});
}

TEST_CASE("gradcheck: mean") {
  Tensor x = randn({2, 3, 4}).set_requires_grad(true);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return mean(in[0]); }, {x}));
  for (bool keepdim : {false, true}) {
    CAPTURE(keepdim);
    for (std::vector<std::int64_t> axes : std::vector<std::vector<std::int64_t>>{
             {0}, {1}, {-1}, {0, 2}, {-2, -1}, {}}) {
      CAPTURE(axes_str(axes));
      CHECK(gradcheck([&](const std::vector<Tensor>& in) { return mean(in[0], axes, keepdim); }, {x}));
    }
  }
}

// --- var -----------------------------------------------------------------------------------------

TEST_CASE("var with Bessel's correction and without") {
  Tensor x = from_vector({1, 2, 3, 4, 2, 4, 6, 8}, {2, 4});
  check_values(var(x, {1}).value(), {2}, {5.f / 3, 20.f / 3});
  check_values(var(x, {-1}, 0).value(), {2}, {1.25f, 5.f});
  check_values(var(x, {1}, 1, true).value(), {2, 1}, {5.f / 3, 20.f / 3});
  check_values(var(x, {}).value(), {}, {5.35714293f});
  check_values(var(x, {0, 1}, 0, true).value(), {1, 1}, {4.6875f});
  check_values(var(x, {0}).value(), {4}, {0.5f, 2.f, 4.5f, 8.f});
  check_values(var(x, {1}, 3).value(), {2}, {5.f, 20.f});
}

TEST_CASE("var of values far from 0 is computed from deviations (no cancellation)") {
  Tensor x = from_vector({10000.f, 10001.f, 10002.f}, {3});
  check_values(var(x, {0}).value(), {}, {1.f});
}

TEST_CASE("gradcheck: var") {
  Tensor x = randn({2, 3, 4}).set_requires_grad(true);
  for (std::int64_t correction : {0, 1, 2}) {
    for (bool keepdim : {false, true}) {
      CAPTURE(correction);
      CAPTURE(keepdim);
      for (std::vector<std::int64_t> axes : std::vector<std::vector<std::int64_t>>{
               {0, 1}, {1}, {2}, {-1}, {0, 2}, {-3, -2, -1}, {}}) {
        CAPTURE(axes_str(axes));
        CHECK(gradcheck([&](const std::vector<Tensor>& in) { return var(in[0], axes, correction, keepdim); }, {x}));
      }
    }
  }
}

// --- max, argmax ---------------------------------------------------------------------------------

TEST_CASE("max over everything sends the gradient to the first largest element") {
  Tensor x = from_vector({1, 5, 3, 7, 2, 7}, {2, 3}).set_requires_grad(true);
  Tensor m = max(x);
  check_values(m.value(), {}, {7});
  m.backward();
  check_values(x.grad().value(), {2, 3}, {0, 0, 0, 1, 0, 0});
}

TEST_CASE("max along an axis returns values and the first index of the largest") {
  Tensor x = from_vector({1, 5, 3, 7, 2, 7}, {2, 3});
  auto [v1, i1] = max(x, 1);
  check_values(v1.value(), {2}, {5, 7});
  check_indices(i1, {2}, {1, 0});
  auto [v0, i0] = max(x, 0, true);
  check_values(v0.value(), {1, 3}, {7, 5, 7});
  check_indices(i0, {1, 3}, {1, 0, 1});
  auto [vn, in] = max(x, -1, true);
  check_values(vn.value(), {2, 1}, {5, 7});
  check_indices(in, {2, 1}, {1, 0});
}

TEST_CASE("max along the middle axis of a 3-d tensor") {
  // Along axis 1 of distinct_3d: for each (i, k) the largest of three values.
  Tensor x = distinct_3d();
  auto [values, indices] = max(x, 1);
  const Array& xv = x.value();
  REQUIRE(shape_of(values.value()) == Shape{2, 4});
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      std::size_t best = 0;
      for (std::size_t j = 1; j < 3; ++j) {
        if (xv(i, j, k) > xv(i, best, k)) best = j;
      }
      CHECK(indices(i, k) == static_cast<std::int64_t>(best));
      CHECK(values.value()(i, k) == xv(i, best, k));
    }
  }
}

TEST_CASE("max propagates NaN, at its first position, as PyTorch") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = from_vector({1, nan, 3, nan}, {4});
  auto [v, i] = max(x, 0);
  CHECK(std::isnan(v.item()));
  CHECK(i() == 1);
  CHECK(std::isnan(max(x).item()));
  Tensor y = from_vector({1, 3, 2, nan, 4, 0}, {3, 2});
  check_indices(argmax(y, 0), {2}, {2, 1});
}

TEST_CASE("max backward routes each gradient to its index, along any axis") {
  Tensor x = from_vector({1, 5, 3, 7, 2, 7}, {2, 3}).set_requires_grad(true);
  max_values(x, 1, false).backward(from_vector({10, 20}, {2}));
  check_values(x.grad().value(), {2, 3}, {0, 10, 0, 20, 0, 0});
  x.zero_grad();
  max_values(x, 0, true).backward(from_vector({1, 2, 3}, {1, 3}));
  check_values(x.grad().value(), {2, 3}, {0, 2, 0, 1, 0, 3});
}

TEST_CASE("argmax as torch.argmax: first index on ties, keepdim, negative axes") {
  Tensor x = from_vector({1, 5, 5, 7, 2, 7}, {2, 3});
  check_indices(argmax(x, 1), {2}, {1, 0});
  check_indices(argmax(x, -1, true), {2, 1}, {1, 0});
  check_indices(argmax(x, 0), {3}, {1, 0, 1});
  check_indices(argmax(x, -2, true), {1, 3}, {1, 0, 1});
  check_indices(argmax(scalar_tensor(2.f), 0), {}, {0});
}

TEST_CASE("max and argmax over a long row and many rows (the threaded path)") {
  Tensor x = randn({300, 400});
  x.mutable_value()(123, 321) = 100.f;
  x.mutable_value()(7, 0) = 50.f;
  Indices rows = argmax(x, 1);
  CHECK(rows(123) == 321);
  CHECK(rows(7) == 0);
  Indices cols = argmax(x, 0);
  CHECK(cols(321) == 123);
  CHECK(cols(0) == 7);
  CHECK(max(x).item() == 100.f);
}

TEST_CASE("gradcheck: max") {
  Tensor x = distinct_3d();
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return max(in[0]); }, {x}));
  for (bool keepdim : {false, true}) {
    for (std::int64_t axis : {0, 1, 2, -1, -2, -3}) {
      CAPTURE(keepdim);
      CAPTURE(axis);
      CHECK(gradcheck([&](const std::vector<Tensor>& in) { return max_values(in[0], axis, keepdim); }, {x}));
    }
  }
}

// --- inputs that went through a transpose or a slice ---------------------------------------------

TEST_CASE("reductions of a transposed tensor") {
  Tensor x = small();
  Tensor t = transpose(x, 0, 1);  // [[1,4],[2,5],[3,6]]
  check_values(sum(t, {1}).value(), {3}, {5, 7, 9});
  check_values(mean(t, {0}).value(), {2}, {2, 5});
  check_values(var(t, {0}, 0).value(), {2}, {2.f / 3, 2.f / 3});
  check_indices(argmax(t, 1), {3}, {1, 1, 1});
  check_values(max_values(t, 0, false).value(), {2}, {3, 6});
}

TEST_CASE("gradcheck: reductions after a transpose and after a slice") {
  auto check_all = [](const std::function<Tensor(const Tensor&)>& before) {
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return sum(before(in[0]), {0}, true); }, {distinct_3d()}));
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return sum(before(in[0]), {-1, 0}); }, {distinct_3d()}));
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return mean(before(in[0]), {1}); }, {distinct_3d()}));
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return var(before(in[0]), {0, 2}, 1, true); },
                    {distinct_3d()}));
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return max(before(in[0])); }, {distinct_3d()}));
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return max_values(before(in[0]), 1, false); },
                    {distinct_3d()}));
    CHECK(gradcheck([&](const std::vector<Tensor>& in) { return max_values(before(in[0]), -1, true); },
                    {distinct_3d()}));
  };
  check_all([](const Tensor& t) { return transpose(t, 0, 2); });  // [4,3,2]
  check_all([](const Tensor& t) { return transpose(t, 1, 2); });  // [2,4,3]
  check_all([](const Tensor& t) { return slice(t, 2, 1, 3); });  // [2,3,2]
  check_all([](const Tensor& t) { return slice(transpose(t, 0, 1), 0, 1, 3); });  // [2,2,4]
}

// --- bad input -----------------------------------------------------------------------------------

TEST_CASE("bad axes are rejected with the op, axis and rank") {
  Tensor x = small();
  CHECK_THROWS_WITH_AS(sum(x, {2}), doctest::Contains("sum: axis 2 is out of range for a tensor of rank 2"), Error);
  CHECK_THROWS_WITH_AS(sum(x, {-3}), doctest::Contains("sum: axis -3 is out of range"), Error);
  CHECK_THROWS_WITH_AS(sum(x, {0, -2}), doctest::Contains("sum: axis list [0,-2] names an axis twice"), Error);
  CHECK_THROWS_WITH_AS(mean(x, {1, 5}), doctest::Contains("mean: axis 5 is out of range"), Error);
  CHECK_THROWS_WITH_AS(var(x, {7}), doctest::Contains("var: axis 7 is out of range"), Error);
  CHECK_THROWS_WITH_AS(var(x, {1, 1}), doctest::Contains("var: axis list [1,1] names an axis twice"), Error);
  CHECK_THROWS_WITH_AS(max(x, 2), doctest::Contains("max: axis 2 is out of range"), Error);
  CHECK_THROWS_WITH_AS(max(x, -3), doctest::Contains("max: axis -3 is out of range"), Error);
  CHECK_THROWS_WITH_AS(argmax(x, 3), doctest::Contains("argmax: axis 3 is out of range"), Error);
  CHECK_THROWS_WITH_AS(sum(scalar_tensor(1.f), {1}), doctest::Contains("sum: axis 1 is out of range"), Error);
}

TEST_CASE("var needs n - correction > 0") {
  CHECK_THROWS_WITH_AS(var(ones({1, 3}), {0}),
                       doctest::Contains("var: the variance of 1 element(s) with correction 1 divides by "
                                         "n - correction = 0"),
                       Error);
  CHECK_THROWS_WITH_AS(var(ones({2, 3}), {1}, 3), doctest::Contains("n - correction = 0"), Error);
  CHECK_THROWS_WITH_AS(var(ones({2, 3}), {}, 7), doctest::Contains("n - correction = -1"), Error);
  CHECK_THROWS_WITH_AS(var(zeros({0, 3}), {0}, 0), doctest::Contains("tensor [0,3], axes [0]"), Error);
}

TEST_CASE("max and argmax over an empty axis have no answer") {
  CHECK_THROWS_WITH_AS(max(zeros({0, 3}), 0),
                       doctest::Contains("max: axis 0 of tensor [0,3] is empty: there is no largest element"), Error);
  CHECK_THROWS_WITH_AS(argmax(zeros({2, 0}), -1), doctest::Contains("argmax: axis -1 of tensor [2,0] is empty"),
                       Error);
  CHECK_THROWS_WITH_AS(max(zeros({0})), doctest::Contains("max: tensor [0] is empty"), Error);
  // Reducing a non-empty axis of an empty tensor is fine: an empty result.
  auto [values, indices] = max(zeros({0, 3}), 1);
  CHECK(values.shape() == Shape{0});
  CHECK(indices.size() == 0);
}
