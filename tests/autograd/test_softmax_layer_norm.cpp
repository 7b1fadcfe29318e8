// Softmax, log-softmax and layer norm: values against hand-computed numbers and a double-precision
// reference, stability with huge logits, gradients for every axis, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xstrided_view.hpp>
#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

const float kInf = std::numeric_limits<float>::infinity();



void check_values(const Array& actual, const Shape& shape, const std::vector<float>& expected) {
  REQUIRE(shape_of(actual) == shape);
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(actual.data()[i] == doctest::Approx(expected[i]).epsilon(1e-5));
  }
}

/// |actual - expected| <= atol + rtol |expected| everywhere, reporting the first element that is not.
void check_close(const Array& actual, const std::vector<double>& expected, double rtol = 1e-5, double atol = 1e-6) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (std::abs(actual.data()[i] - expected[i]) > atol + rtol * std::abs(expected[i])) {
      CAPTURE(i);
      CHECK(actual.data()[i] == doctest::Approx(expected[i]));
      return;
    }
  }
}

struct Around {
  std::size_t outer = 1, n = 1, inner = 1;
};

Around around(const Shape& shape, std::size_t axis) {
  Around v;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < axis) v.outer *= shape[d];
    else if (d == axis) v.n = shape[d];
    else v.inner *= shape[d];
  }
  return v;
}

/// softmax / log_softmax along `axis` by the definition, in double.
std::vector<double> reference_softmax(const Array& x, std::size_t axis, bool log) {
  const Around v = around(shape_of(x), axis);
  std::vector<double> y(x.size());
  for (std::size_t o = 0; o < v.outer; ++o) {
    for (std::size_t i = 0; i < v.inner; ++i) {
      auto at = [&](std::size_t k) { return (o * v.n + k) * v.inner + i; };
      double m = -kInf, s = 0;
      for (std::size_t k = 0; k < v.n; ++k) m = std::max(m, static_cast<double>(x.data()[at(k)]));
      for (std::size_t k = 0; k < v.n; ++k) s += std::exp(x.data()[at(k)] - m);
      for (std::size_t k = 0; k < v.n; ++k) {
        y[at(k)] = log ? x.data()[at(k)] - m - std::log(s) : std::exp(x.data()[at(k)] - m) / s;
      }
    }
  }
  return y;
}

/// The input gradient of softmax / log_softmax along `axis`, given its output y and dy, in double.
std::vector<double> reference_softmax_backward(const std::vector<double>& y, const Array& dy, const Shape& shape,
                                               std::size_t axis, bool log) {
  const Around v = around(shape, axis);
  std::vector<double> dx(y.size());
  for (std::size_t o = 0; o < v.outer; ++o) {
    for (std::size_t i = 0; i < v.inner; ++i) {
      auto at = [&](std::size_t k) { return (o * v.n + k) * v.inner + i; };
      double s = 0;
      for (std::size_t k = 0; k < v.n; ++k) s += log ? dy.data()[at(k)] : dy.data()[at(k)] * y[at(k)];
      for (std::size_t k = 0; k < v.n; ++k) {
        dx[at(k)] = log ? dy.data()[at(k)] - std::exp(y[at(k)]) * s : y[at(k)] * (dy.data()[at(k)] - s);
      }
    }
  }
  return dx;
}

/// Forward and backward of softmax or log_softmax along `axis` against the double reference.
void check_against_reference(const Shape& shape, std::int64_t axis, bool log) {
  CAPTURE(shape_str(shape));
  CAPTURE(axis);
  CAPTURE(log);
  Tensor x = normal(shape, 0.f, 3.f).set_requires_grad(true);
  const auto a = static_cast<std::size_t>(axis < 0 ? axis + static_cast<std::int64_t>(shape.size()) : axis);
  Tensor y = log ? log_softmax(x, axis) : softmax(x, axis);
  const std::vector<double> expected = reference_softmax(x.value(), a, log);
  check_close(y.value(), expected);
  Tensor dy = randn(shape);
  y.backward(dy);
  check_close(x.grad().value(), reference_softmax_backward(expected, dy.value(), shape, a, log), 1e-4, 1e-5);
}

Tensor softmax_kind(const Tensor& x, std::int64_t axis, bool log) { return log ? log_softmax(x, axis) : softmax(x, axis); }

/// layer_norm over the last axis by the definition, in double, and its gradients for a given dy.
struct LayerNormReference {
  std::vector<double> y, dx, dweight, dbias;
};

LayerNormReference reference_layer_norm(const Array& x, const Array* weight, const Array* bias, const Array& dy,
                                        double eps) {
  const std::size_t d = x.shape().back(), rows = x.size() / d;
  LayerNormReference r;
  r.y.resize(x.size());
  r.dx.resize(x.size());
  r.dweight.assign(d, 0);
  r.dbias.assign(d, 0);
  for (std::size_t row = 0; row < rows; ++row) {
    const float* xr = x.data() + row * d;
    const float* dyr = dy.data() + row * d;
    double mean = 0, var = 0;
    for (std::size_t j = 0; j < d; ++j) mean += xr[j];
    mean /= d;
    for (std::size_t j = 0; j < d; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= d;
    const double rstd = 1 / std::sqrt(var + eps);
    double mean_g = 0, mean_g_xhat = 0;
    for (std::size_t j = 0; j < d; ++j) {
      const double xhat = (xr[j] - mean) * rstd;
      const double w = weight ? weight->data()[j] : 1.0, b = bias ? bias->data()[j] : 0.0;
      r.y[row * d + j] = xhat * w + b;
      mean_g += dyr[j] * w / d;
      mean_g_xhat += dyr[j] * w * xhat / d;
      r.dweight[j] += dyr[j] * xhat;
      r.dbias[j] += dyr[j];
    }
    for (std::size_t j = 0; j < d; ++j) {
      const double xhat = (xr[j] - mean) * rstd;
      const double w = weight ? weight->data()[j] : 1.0;
      r.dx[row * d + j] = rstd * (dyr[j] * w - mean_g - xhat * mean_g_xhat);
    }
  }
  return r;
}

}  // namespace

// --- softmax, log_softmax ------------------------------------------------------------------------

TEST_CASE("softmax and log_softmax of [1, 2, 3]") {
  Tensor x = from_vector({1, 2, 3}, {3});
  check_values(softmax(x, 0).value(), {3}, {0.09003057f, 0.24472847f, 0.66524096f});
  check_values(log_softmax(x, -1).value(), {3}, {-2.40760596f, -1.40760596f, -0.40760596f});
}

TEST_CASE("softmax along the first axis of a matrix normalizes its columns") {
  Tensor x = from_vector({0, 1, 2, 0, 1, 2 + std::log(3.f)}, {2, 3});
  // Column j holds x(0,j) and x(1,j): softmax gives 1/(1+e^(x1-x0)) on top.
  check_values(softmax(x, 0).value(), {2, 3}, {0.5f, 0.5f, 0.25f, 0.5f, 0.5f, 0.75f});
  check_values(softmax(x, -2).value(), {2, 3}, {0.5f, 0.5f, 0.25f, 0.5f, 0.5f, 0.75f});
  check_values(log_softmax(x, 0).value(), {2, 3},
               {std::log(0.5f), std::log(0.5f), std::log(0.25f), std::log(0.5f), std::log(0.5f), std::log(0.75f)});
}

TEST_CASE("softmax of a 0-d tensor is 1, as PyTorch") {
  CHECK(softmax(scalar_tensor(5.f), 0).item() == 1.f);
  CHECK(log_softmax(scalar_tensor(5.f), -1).item() == 0.f);
}

TEST_CASE("softmax and log_softmax match a double reference along every axis, forward and backward") {
  for (bool log : {false, true}) {
    for (std::int64_t axis : {0, 1, 2, -1, -2, -3}) check_against_reference({3, 4, 5}, axis, log);
    // Tiles of columns: inner = 350 is 5 full tiles of 64 and a partial one.
    check_against_reference({2, 3, 5, 70}, 1, log);
    check_against_reference({2, 3, 5, 70}, -4, log);
    check_against_reference({3, 4, 600}, 1, log);   // tiles of 512 and 88 columns
    check_against_reference({1, 5, 1100}, -2, log);  // one block split over the threads
    // Large enough for the threaded paths, along the last axis and along the first.
    check_against_reference({64, 1024}, -1, log);
    check_against_reference({300, 200}, 0, log);
    // Rows shorter and longer than a vector, odd lengths.
    check_against_reference({7, 1}, 1, log);
    check_against_reference({5, 3}, 1, log);
    check_against_reference({2, 1037}, 1, log);
    // Rows in runs of 32 (of 500 elements) and a last run of 5, each run pipelined on its own.
    check_against_reference({37, 500}, -1, log);
    // Short rows, a vector's width of rows at a time: one to three vectors, whole or not, and a
    // last group of fewer rows.
    for (const std::size_t n : {1, 8, 16, 17, 32, 40, 48, 49}) {
      CAPTURE(n);
      check_against_reference({37, n}, -1, log);
    }
    check_against_reference({3, 16, 32}, -1, log);
    // Short rows pipelined over their groups: one group, whole and not; two; many and a last of one.
    for (const std::size_t rows : {1, 15, 16, 17, 32, 49, 81}) {
      for (const std::size_t n : {8, 32, 33}) {
        CAPTURE(rows);
        CAPTURE(n);
        check_against_reference({rows, n}, -1, log);
      }
    }
  }
}

TEST_CASE("softmax with logits of 1e4 does not overflow") {
  for (std::int64_t axis : {0, 1}) {
    CAPTURE(axis);
    // The logits along `axis`: [1e4, 0, -1e4] and [1e4, 1e4 - 1, 1e4 - 2].
    Array rows{{1e4f, 0.f, -1e4f}, {1e4f, 1e4f - 1, 1e4f - 2}};
    Tensor x = axis == 1 ? Tensor(rows) : Tensor(Array(xt::transpose(rows)));
    x.set_requires_grad(true);
    Array y = softmax(x, axis).value();
    Array l = log_softmax(x, axis).value();
    if (axis == 0) {
      y = xt::transpose(y);
      l = xt::transpose(l);
    }
    check_values(y, {2, 3}, {1, 0, 0, 0.66524096f, 0.24472847f, 0.09003057f});
    check_values(l, {2, 3}, {0, -1e4f, -2e4f, -0.40760596f, -1.40760596f, -2.40760596f});
    // Gradients stay finite: softmax(x) is saturated at one-hot in the first row.
    softmax(x, axis).backward(ones(x.shape()));
    log_softmax(x, axis).backward(ones(x.shape()));
    CHECK(xt::all(xt::isfinite(x.grad().value())));
  }
}

TEST_CASE("softmax of rows far apart in scale: each row shifted by its own maximum") {
  // Rows alternating around +500 and -500 (exp(1000) overflows, and a sum of exp(x) is not a
  // float either way), 50 of them: rows of 40 (short rows, in groups) and of 1000.
  for (const std::size_t n : {40, 1000}) {
    const std::size_t rows = 50;
    Array x = Array::from_shape({rows, n});
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t j = 0; j < n; ++j) x(r, j) = (r % 2 ? -500.f : 500.f) + 0.1f * static_cast<float>((r + j) % 7);
    }
    const Array y = softmax(Tensor(x), -1).value(), l = log_softmax(Tensor(x), -1).value();
    for (std::size_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (std::size_t j = 0; j < n; ++j) sum += std::exp(0.1 * ((r + j) % 7));
      for (std::size_t j = 0; j < n; ++j) {
        const double expected = std::exp(0.1 * ((r + j) % 7)) / sum;
        CAPTURE(n);
        CAPTURE(r);
        CAPTURE(j);
        REQUIRE(y(r, j) == doctest::Approx(expected).epsilon(1e-5));
        REQUIRE(l(r, j) == doctest::Approx(std::log(expected)).epsilon(1e-4));
      }
    }
  }
}

TEST_CASE("softmax of short rows: the maximum of all of a row's vectors, wherever it sits") {
  // Rows of 1 to 4 vectors whose largest logits, 300 above the rest (exp(300) overflows), sit in
  // one stretch of 5 that moves along the row from one row to the next.
  for (const std::size_t n : {8, 20, 32, 40, 48, 64}) {
    const std::size_t rows = 37;
    Array x = Array::from_shape({rows, n});
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t start = (r * 7) % (n - 4);
      for (std::size_t j = 0; j < n; ++j) x(r, j) = (j >= start && j < start + 5 ? 300.f : 0.f) + 0.25f * static_cast<float>(j % 3);
    }
    for (bool log : {false, true}) {
      CAPTURE(n);
      CAPTURE(log);
      const Array y = softmax_kind(Tensor(x), -1, log).value();
      for (std::size_t r = 0; r < rows; ++r) {
        const float m = xt::amax(xt::view(x, r, xt::all()))();
        double sum = 0;
        for (std::size_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(x(r, j)) - m);
        for (std::size_t j = 0; j < n; ++j) {
          const double log_p = static_cast<double>(x(r, j)) - m - std::log(sum);
          CAPTURE(r);
          CAPTURE(j);
          if (log) REQUIRE(y(r, j) == doctest::Approx(log_p).epsilon(1e-5));
          else REQUIRE(y(r, j) == doctest::Approx(std::exp(log_p)).epsilon(1e-5));
        }
      }
    }
  }
}

TEST_CASE("softmax of logits at -inf (masked) gives them 0") {
  Tensor x = from_vector({0, -kInf, std::log(3.f), -kInf}, {4}).set_requires_grad(true);
  check_values(softmax(x, 0).value(), {4}, {0.25f, 0, 0.75f, 0});
  Array l = log_softmax(x, 0).value();
  CHECK(l(0) == doctest::Approx(std::log(0.25f)));
  CHECK(l(1) == -kInf);
  softmax(x, 0).backward(from_vector({1, 2, 3, 4}, {4}));
  CHECK(x.grad().value()(1) == 0.f);
}

TEST_CASE("a NaN logit makes its whole slice NaN, as PyTorch") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = from_vector({1, nan, 2, 3, 4, 5}, {2, 3});
  for (bool log : {false, true}) {
    CAPTURE(log);
    Array y = softmax_kind(x, 1, log).value();
    for (std::size_t j = 0; j < 3; ++j) CHECK(std::isnan(y(0, j)));
    CHECK_FALSE(std::isnan(y(1, 0)));
    Array c = softmax_kind(x, 0, log).value();  // along the columns: only column 1 has a NaN
    CHECK(std::isnan(c(0, 1)));
    CHECK(std::isnan(c(1, 1)));
    CHECK_FALSE(std::isnan(c(0, 0)));
    CHECK_FALSE(std::isnan(c(1, 2)));
  }
}

TEST_CASE("short rows: a NaN or masked logits in one row leave the other rows of its group alone") {
  // Rows of 24 taken a vector's width of rows at a time, their sums and maxima reduced together.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::size_t rows = 20, n = 24;
  Array x = Array::from_shape({rows, n});
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < n; ++j) x(r, j) = 0.1f * static_cast<float>((3 * r + j) % 13);
  }
  x(3, 10) = nan;
  for (std::size_t j = 0; j < n; ++j) x(6, j) = j == 20 ? 1.f : -kInf;  // one key left
  for (bool log : {false, true}) {
    CAPTURE(log);
    const Array y = softmax_kind(Tensor(x), -1, log).value();
    for (std::size_t r = 0; r < rows; ++r) {
      CAPTURE(r);
      if (r == 3) {
        for (std::size_t j = 0; j < n; ++j) CHECK(std::isnan(y(r, j)));
        continue;
      }
      double sum = 0;
      for (std::size_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(x(r, j)));
      for (std::size_t j = 0; j < n; ++j) {
        const double p = std::exp(static_cast<double>(x(r, j))) / sum;
        if (!log) CHECK(y(r, j) == doctest::Approx(p).epsilon(1e-5));
        else if (p == 0) CHECK(y(r, j) == -kInf);
        else CHECK(y(r, j) == doctest::Approx(std::log(p)).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("softmax rows sum to 1") {
  Tensor x = normal({16, 333}, 0.f, 10.f);
  Array y = softmax(x, -1).value();
  for (std::size_t r = 0; r < 16; ++r) CHECK(xt::sum(xt::view(y, r))() == doctest::Approx(1.f).epsilon(1e-5));
}

TEST_CASE("gradcheck: softmax and log_softmax along every axis") {
  Tensor x = randn({2, 3, 4}).set_requires_grad(true);
  for (bool log : {false, true}) {
    for (std::int64_t axis : {0, 1, 2, -1, -2, -3}) {
      CAPTURE(log);
      CAPTURE(axis);
      CHECK(gradcheck([&](const std::vector<Tensor>& in) { return softmax_kind(in[0], axis, log); }, {x}));
    }
  }
}

TEST_CASE("gradcheck: softmax and log_softmax after a transpose and after a slice") {
  Tensor x = randn({2, 3, 4}).set_requires_grad(true);
  for (bool log : {false, true}) {
    CAPTURE(log);
    auto check = [&](std::int64_t axis, const std::function<Tensor(const Tensor&)>& before) {
      CAPTURE(axis);
      CHECK(gradcheck([&](const std::vector<Tensor>& in) { return softmax_kind(before(in[0]), axis, log); }, {x}));
    };
    for (std::int64_t axis : {0, 1, -1}) {
      check(axis, [](const Tensor& t) { return transpose(t, 0, 2); });
      check(axis, [](const Tensor& t) { return transpose(t, 1, 2); });
      check(axis, [](const Tensor& t) { return slice(t, 2, 1, 4); });
      check(axis, [](const Tensor& t) { return slice(transpose(t, 0, 1), 0, 0, 2); });
    }
  }
}

TEST_CASE("softmax and layer_norm of empty tensors are empty") {
  for (const Shape& shape : {Shape{2, 0}, Shape{0, 3}, Shape{0}}) {
    CAPTURE(shape_str(shape));
    for (std::int64_t axis : {0, -1}) {
      Tensor x = zeros(shape).set_requires_grad(true);
      Tensor y = softmax(x, axis);
      CHECK(y.shape() == shape);
      y.backward(zeros(shape));
      CHECK(x.grad().shape() == shape);
      CHECK(log_softmax(x, axis).shape() == shape);
    }
    Tensor x = zeros(shape).set_requires_grad(true);
    Tensor y = layer_norm(x);
    CHECK(y.shape() == shape);
    y.backward(zeros(shape));
    CHECK(x.grad().shape() == shape);
  }
}

TEST_CASE("softmax and log_softmax reject a bad axis") {
  Tensor x = randn({2, 3});
  CHECK_THROWS_WITH_AS(softmax(x, 2), doctest::Contains("softmax: axis 2 is out of range for a tensor of rank 2"),
                       Error);
  CHECK_THROWS_WITH_AS(softmax(x, -3), doctest::Contains("softmax: axis -3 is out of range"), Error);
  CHECK_THROWS_WITH_AS(log_softmax(x, 5), doctest::Contains("log_softmax: axis 5 is out of range"), Error);
  CHECK_THROWS_WITH_AS(log_softmax(scalar_tensor(1.f), 1), doctest::Contains("log_softmax: axis 1 is out of range"),
                       Error);
}

// --- layer_norm ----------------------------------------------------------------------------------

TEST_CASE("layer_norm of two rows, without and with weight and bias (numbers from PyTorch)") {
  Tensor x = from_vector({1, 2, 3, 4, 2, 4, 6, 8}, {2, 4});
  check_values(layer_norm(x).value(), {2, 4},
               {-1.34163547f, -0.44721186f, 0.44721180f, 1.34163547f, -1.34163952f, -0.44721317f, 0.44721317f,
                1.34163952f});
  Tensor w = from_vector({1, 2, 3, 4}, {4}), b = from_vector({0.5f, -0.5f, 1, 0}, {4});
  check_values(layer_norm(x, w, b).value(), {2, 4},
               {-0.84163547f, -1.39442372f, 2.34163547f, 5.36654186f, -0.84163952f, -1.39442635f, 2.34163952f,
                5.36655807f});
  // Weight only, bias only: y = xhat * w and y = xhat + b.
  check_values(layer_norm(x, w).value(), {2, 4},
               {-1.34163547f, -0.89442372f, 1.34163547f, 5.36654186f, -1.34163952f, -0.89442635f, 1.34163952f,
                5.36655807f});
  check_values(layer_norm(x, Tensor(), b).value(), {2, 4},
               {-0.84163547f, -0.94721186f, 1.44721180f, 1.34163547f, -0.84163952f, -0.94721317f, 1.44721317f,
                1.34163952f});
}

TEST_CASE("layer_norm of a constant row is the bias") {
  Tensor b = from_vector({1, 2, 3}, {3});
  check_values(layer_norm(full({2, 3}, 7.f), ones({3}), b).value(), {2, 3}, {1, 2, 3, 1, 2, 3});
}

TEST_CASE("layer_norm matches a double reference, forward and backward, small and threaded sizes") {
  for (const Shape& shape : {Shape{3, 4, 5}, Shape{6, 2}, Shape{7, 33}, Shape{128, 512}, Shape{1, 1000}}) {
    for (int affine = 0; affine < 4; ++affine) {
      CAPTURE(shape_str(shape));
      CAPTURE(affine);
      const std::size_t d = shape.back();
      Tensor x = normal(shape, 1.f, 2.f).set_requires_grad(true);
      Tensor w = affine & 1 ? normal({d}, 1.f, 0.5f).set_requires_grad(true) : Tensor();
      Tensor b = affine & 2 ? randn({d}).set_requires_grad(true) : Tensor();
      Tensor dy = randn(shape);
      const LayerNormReference r = reference_layer_norm(x.value(), w.defined() ? &w.value() : nullptr,
                                                        b.defined() ? &b.value() : nullptr, dy.value(), 1e-5);
      Tensor y = layer_norm(x, w, b);
      check_close(y.value(), r.y, 1e-5, 1e-5);
      y.backward(dy);
      check_close(x.grad().value(), r.dx, 1e-4, 1e-4);
      if (w.defined()) check_close(w.grad().value(), r.dweight, 1e-4, 1e-3);
      if (b.defined()) check_close(b.grad().value(), r.dbias, 1e-4, 1e-3);
    }
  }
}

TEST_CASE("layer_norm computes only the gradients asked for") {
  Tensor x = randn({4, 6});
  Tensor w = ones({6}).set_requires_grad(true);
  Tensor b = zeros({6});
  Tensor dy = randn({4, 6});
  layer_norm(x, w, b).backward(dy);
  const LayerNormReference r = reference_layer_norm(x.value(), &w.value(), &b.value(), dy.value(), 1e-5);
  check_close(w.grad().value(), r.dweight, 1e-4, 1e-4);
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("gradcheck: layer_norm with and without weight and bias") {
  Tensor x = randn({2, 3, 5}).set_requires_grad(true);
  Tensor w = normal({5}, 1.f, 0.5f).set_requires_grad(true);
  Tensor b = randn({5}).set_requires_grad(true);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0]); }, {x}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); }, {x, w, b}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1]); }, {x, w}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), in[1]); }, {x, b}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 0.1f); }, {x, w, b}));
  // Only the affine parameters require grad.
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); }, {x.detach(), w, b}));
}

TEST_CASE("gradcheck: layer_norm after a transpose and after a slice") {
  Tensor x = randn({4, 3, 5}).set_requires_grad(true);
  Tensor w3 = normal({3}, 1.f, 0.5f).set_requires_grad(true), b3 = randn({3}).set_requires_grad(true);
  Tensor w4 = normal({4}, 1.f, 0.5f).set_requires_grad(true), b4 = randn({4}).set_requires_grad(true);
  // A norm over 3 or 4 elements curves sharply where they are close: the central difference's
  // own error at the default step (1e-2) passed the tolerance for 6 of 40 random inputs, at 3e-3
  // for none.
  GradcheckOptions options;
  options.eps = 3e-3;
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(transpose(in[0], 1, 2), in[1], in[2]); },
                  {x, w3, b3}, options));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(transpose(in[0], 0, 2), in[1], in[2]); },
                  {x, w4, b4}, options));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(slice(in[0], 2, 1, 4), in[1], in[2]); },
                  {x, w3, b3}, options));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return layer_norm(slice(in[0], 1, 0, 2)); }, {x}, options));
}

TEST_CASE("layer_norm rejects a weight or bias of the wrong shape and a 0-d input") {
  Tensor x = randn({2, 4});
  CHECK_THROWS_WITH_AS(layer_norm(x, ones({5})),
                       doctest::Contains("layer_norm: weight has shape [5], expected [4] (the last axis of the input, "
                                         "of shape [2,4])"),
                       Error);
  CHECK_THROWS_WITH_AS(layer_norm(x, ones({4}), ones({1, 4})),
                       doctest::Contains("layer_norm: bias has shape [1,4], expected [4]"), Error);
  CHECK_THROWS_WITH_AS(layer_norm(x, Tensor(), ones({2})), doctest::Contains("layer_norm: bias has shape [2]"), Error);
  CHECK_THROWS_WITH_AS(layer_norm(x, scalar_tensor(1.f)), doctest::Contains("layer_norm: weight has shape []"), Error);
  CHECK_THROWS_WITH_AS(layer_norm(scalar_tensor(1.f)), doctest::Contains("layer_norm: the input is a 0-d tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(layer_norm(Tensor()), doctest::Contains("layer_norm: the input tensor is undefined"), Error);
}

TEST_CASE("add_layer_norm is layer_norm(x + residual), forward and backward, bit for bit, and gradchecks") {
  for (const Shape shape : {Shape{2, 3, 5}, Shape{64, 1024}}) {  // small, and large enough for the threads
    Tensor x = randn(shape).set_requires_grad(true), r = randn(shape).set_requires_grad(true);
    Tensor w = normal({shape.back()}, 1.f, 0.5f).set_requires_grad(true);
    Tensor b = randn({shape.back()}).set_requires_grad(true);
    Tensor x2 = Tensor(x.value()).set_requires_grad(true), r2 = Tensor(r.value()).set_requires_grad(true);
    Tensor w2 = Tensor(w.value()).set_requires_grad(true), b2 = Tensor(b.value()).set_requires_grad(true);
    Tensor dy = randn(shape);
    Tensor fused = add_layer_norm(x, r, w, b);
    Tensor plain = layer_norm(x2 + r2, w2, b2);
    CHECK(fused.value() == plain.value());
    fused.backward(dy);
    plain.backward(dy);
    CHECK(x.grad().value() == x2.grad().value());
    CHECK(r.grad().value() == r2.grad().value());
    CHECK(w.grad().value() == w2.grad().value());
    CHECK(b.grad().value() == b2.grad().value());
  }
  Tensor x = randn({2, 3, 5}).set_requires_grad(true), r = randn({2, 3, 5}).set_requires_grad(true);
  Tensor w = normal({5}, 1.f, 0.5f).set_requires_grad(true), b = randn({5}).set_requires_grad(true);
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return add_layer_norm(in[0], in[1], in[2], in[3]); }, {x, r, w, b}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return add_layer_norm(in[0], in[1]); }, {x, r}));
  // Only one of the two summands requires grad; the same tensor as both.
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return add_layer_norm(in[0], in[1]); }, {x.detach(), r}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return add_layer_norm(in[0], in[0], in[1], in[2]); }, {x, w, b}));
}

TEST_CASE("layer_norm and add_layer_norm add their input gradients to what those already hold") {
  for (const Shape shape : {Shape{2, 3, 5}, Shape{64, 1024}}) {  // small, and large enough for the threads
    Tensor x = randn(shape).set_requires_grad(true), r = randn(shape).set_requires_grad(true);
    Tensor w = normal({shape.back()}, 1.f, 0.5f).set_requires_grad(true);
    Tensor x2 = Tensor(x.value()).set_requires_grad(true), r2 = Tensor(r.value()).set_requires_grad(true);
    Tensor w2 = Tensor(w.value()).set_requires_grad(true);
    Tensor dy = randn(shape), c = randn(shape);
    // x and r feed other ops too, recorded later, whose backward runs first: the part of
    // add_layer_norm arrives in gradients that hold theirs already.
    const Tensor fused_first = add_layer_norm(x, r, w), plain_first = layer_norm(x2 + r2, w2);
    const Tensor fused_rest = layer_norm(x) + r * c, plain_rest = layer_norm(x2) + r2 * c;
    const Tensor fused = fused_first + fused_rest, plain = plain_first + plain_rest;
    REQUIRE(fused.value() == plain.value());
    fused.backward(dy);
    plain.backward(dy);
    // Equal up to one rounding: the kernel may fuse its last multiply with the add.
    CHECK(xt::allclose(x.grad().value(), x2.grad().value(), 1e-6, 1e-6));
    CHECK(xt::allclose(r.grad().value(), r2.grad().value(), 1e-6, 1e-6));
    CHECK(w.grad().value() == w2.grad().value());
    // A second backward adds to the leaves' gradients: twice the first.
    Tensor x3 = Tensor(x.value()).set_requires_grad(true), r3 = Tensor(r.value()).set_requires_grad(true);
    add_layer_norm(x3, r3, w).backward(dy);
    const Array x_once = x3.grad().value(), r_once = r3.grad().value();
    add_layer_norm(x3, r3, w).backward(dy);
    CHECK(xt::allclose(x3.grad().value(), 2.f * x_once, 1e-6, 1e-6));
    CHECK(xt::allclose(r3.grad().value(), 2.f * r_once, 1e-6, 1e-6));
  }
}

TEST_CASE("add_layer_norm rejects a residual of another shape, or none") {
  Tensor x = randn({2, 4});
  CHECK_THROWS_WITH_AS(add_layer_norm(x, randn({2, 5})),
                       doctest::Contains("add_layer_norm: the residual has shape [2,5], expected the input's shape [2,4]"),
                       Error);
  CHECK_THROWS_WITH_AS(add_layer_norm(x, Tensor()), doctest::Contains("add_layer_norm: the residual tensor is undefined"),
                       Error);
  CHECK_THROWS_WITH_AS(add_layer_norm(x, x, ones({5})), doctest::Contains("add_layer_norm: weight has shape [5]"), Error);
}
