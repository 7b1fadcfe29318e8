// Elementwise ops: values, a gradcheck for every op and broadcasting pattern, bad input.
#include <doctest/doctest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {
using Inputs = const std::vector<Tensor>&;

Tensor param(const Shape& shape, float low = -1.f, float high = 1.f, std::uint64_t seed = 1) {
  Generator g(seed);
  return uniform(shape, low, high, g).set_requires_grad(true);
}

/// Values in [0.5, 2]: away from 0 for log, sqrt, div and pow.
Tensor positive(const Shape& shape, std::uint64_t seed = 2) { return param(shape, 0.5f, 2.f, seed); }
}  // namespace

TEST_CASE("binary ops: values") {
  Tensor a = from_vector({1.f, 2.f, 3.f, 4.f}, {2, 2});
  Tensor b = from_vector({10.f, 20.f}, {2});
  CHECK((a + b).value() == Array{{11.f, 22.f}, {13.f, 24.f}});
  CHECK((a - b).value() == Array{{-9.f, -18.f}, {-7.f, -16.f}});
  CHECK((a * b).value() == Array{{10.f, 40.f}, {30.f, 80.f}});
  CHECK((b / a).value() == Array{{10.f, 10.f}, {10.f / 3.f, 5.f}});
  CHECK((2.f - a).value() == Array{{1.f, 0.f}, {-1.f, -2.f}});
  CHECK((6.f / b).value() == Array{0.6f, 0.3f});
  CHECK(pow(a, 2.f).value() == Array{{1.f, 4.f}, {9.f, 16.f}});
}

TEST_CASE("binary ops: gradcheck, same shape and every broadcasting pattern") {
  const std::vector<std::pair<Shape, Shape>> patterns = {
      {{3, 4}, {3, 4}},        // same shape
      {{3, 4}, {4}},           // a row vector, prepended axis
      {{3, 4}, {3, 1}},        // a column, stretched axis
      {{2, 3, 4}, {1, 4}},     // prepended and stretched
      {{3, 1}, {1, 4}},        // both stretched
      {{}, {2, 3}},            // a 0-d tensor
      {{2, 1, 4}, {3, 1}},     // outer product of stretched axes
  };
  for (const auto& pattern : patterns) {
    const Shape& sa = pattern.first;  // (a structured binding cannot be captured in C++17)
    const Shape& sb = pattern.second;
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    Tensor a = param(sa, -1.f, 1.f, 3), b = positive(sb, 4);
    CHECK(gradcheck([](Inputs in) { return add(in[0], in[1]); }, {a, b}));
    CHECK(gradcheck([](Inputs in) { return sub(in[0], in[1]); }, {a, b}));
    CHECK(gradcheck([](Inputs in) { return mul(in[0], in[1]); }, {a, b}));
    CHECK(gradcheck([](Inputs in) { return div(in[0], in[1]); }, {a, b}));
    CHECK(gradcheck([](Inputs in) { return pow(in[1], in[0]); }, {a, b}));
    CHECK(gradcheck([](Inputs in) { return sub(in[1], in[0]); }, {b, a}));  // broadcast on the left
  }
}

TEST_CASE("tensor-scalar forms: gradcheck") {
  Tensor x = positive({2, 3});
  CHECK(gradcheck([](Inputs in) { return in[0] + 2.f; }, {x}));
  CHECK(gradcheck([](Inputs in) { return 2.f + in[0]; }, {x}));
  CHECK(gradcheck([](Inputs in) { return in[0] - 2.f; }, {x}));
  CHECK(gradcheck([](Inputs in) { return 2.f - in[0]; }, {x}));
  CHECK(gradcheck([](Inputs in) { return in[0] * -3.f; }, {x}));
  CHECK(gradcheck([](Inputs in) { return -3.f * in[0]; }, {x}));
  CHECK(gradcheck([](Inputs in) { return in[0] / 4.f; }, {x}));
  CHECK(gradcheck([](Inputs in) { return 4.f / in[0]; }, {x}));
  CHECK(gradcheck([](Inputs in) { return -in[0]; }, {x}));
  CHECK(gradcheck([](Inputs in) { return pow(in[0], 3.f); }, {x}));
  CHECK(gradcheck([](Inputs in) { return pow(in[0], -0.5f); }, {x}));
}

TEST_CASE("unary ops and activations: gradcheck") {
  Tensor x = param({3, 5}, -2.f, 2.f, 7);
  Tensor p = positive({3, 5}, 8);
  CHECK(gradcheck([](Inputs in) { return exp(in[0]); }, {x}));
  CHECK(gradcheck([](Inputs in) { return log(in[0]); }, {p}));
  CHECK(gradcheck([](Inputs in) { return sqrt(in[0]); }, {p}));
  CHECK(gradcheck([](Inputs in) { return tanh(in[0]); }, {x}));
  CHECK(gradcheck([](Inputs in) { return sigmoid(in[0]); }, {x}));
  CHECK(gradcheck([](Inputs in) { return gelu(in[0]); }, {x}));
  CHECK(gradcheck([](Inputs in) { return gelu(in[0], "tanh"); }, {x}));
  // Kinks at 0: inputs kept at least 0.1 away from it.
  Tensor away = from_vector({-1.5f, -0.7f, -0.1f, 0.1f, 0.6f, 1.9f}, {2, 3}).set_requires_grad(true);
  CHECK(gradcheck([](Inputs in) { return abs(in[0]); }, {away}));
  CHECK(gradcheck([](Inputs in) { return relu(in[0]); }, {away}));
}

TEST_CASE("activations: values") {
  Tensor x = from_vector({-1.f, 0.f, 2.f}, {3});
  CHECK(relu(x).value() == Array{0.f, 0.f, 2.f});
  CHECK(abs(x).value() == Array{1.f, 0.f, 2.f});
  CHECK(sigmoid(x).value()(1) == doctest::Approx(0.5f));
  CHECK(tanh(x).value()(2) == doctest::Approx(std::tanh(2.f)));
  // GELU(1) = Phi(1) = 0.8413447; tanh form 0.8411920.
  Tensor one = from_vector({1.f}, {1});
  CHECK(gelu(one).value()(0) == doctest::Approx(0.8413447f).epsilon(1e-6));
  CHECK(gelu(one, "tanh").value()(0) == doctest::Approx(0.8411920f).epsilon(1e-6));
}

TEST_CASE("abs and relu have PyTorch's zero gradient at 0") {
  Tensor x = zeros({2}).set_requires_grad(true);
  (abs(x) + relu(x)).backward(ones({2}));
  CHECK(x.grad().value() == Array{0.f, 0.f});
}

TEST_CASE("ops on the results of other ops: gradcheck through a chain") {
  Tensor a = param({4, 3}, -1.f, 1.f, 11), b = positive({3}, 12);
  CHECK(gradcheck([](Inputs in) { return tanh(in[0] * in[1]) / (in[1] + 1.f) - exp(in[0]) * 0.1f; }, {a, b}));
}

TEST_CASE("bad input: shapes that do not broadcast, unknown gelu form, undefined tensors") {
  Tensor a = zeros({3, 4}), b = zeros({3});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes [3,4] and [3] cannot be broadcast"), Error);
  CHECK_THROWS_WITH_AS(mul(a, zeros({2, 4})), doctest::Contains("mul: shapes [3,4] and [2,4]"), Error);
  CHECK_THROWS_WITH_AS(gelu(a, "fast"), doctest::Contains("gelu: approximate must be"), Error);
  CHECK_THROWS_WITH_AS(add(a, Tensor()), doctest::Contains("add: an input tensor is undefined"), Error);
}
