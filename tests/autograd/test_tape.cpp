// The tape: recording, reverse replay, accumulation, release, no-grad, deep graphs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

TEST_CASE("backward of y = x*x + 3x gives 2x + 3") {
  Tensor x = from_vector({1.f, -2.f, 0.5f}, {3}).set_requires_grad(true);
  Tensor y = x * x + x * 3.f;
  y.backward(ones({3}));
  const Array& g = x.grad().value();
  CHECK(g(0) == doctest::Approx(5.f));
  CHECK(g(1) == doctest::Approx(-1.f));
  CHECK(g(2) == doctest::Approx(4.f));
}

TEST_CASE("gradients accumulate across backward calls and zero_grad clears them") {
  Tensor x = from_vector({2.f}, {1}).set_requires_grad(true);
  (x * x).backward(ones({1}));
  (x * x).backward(ones({1}));
  CHECK(x.grad().value()(0) == doctest::Approx(8.f));
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a tensor used twice gets both contributions (diamond graph)") {
  Tensor x = from_vector({3.f}, {1}).set_requires_grad(true);
  Tensor a = exp(x);
  Tensor y = a * a + a;  // dy/dx = (2a + 1) a
  y.backward(ones({1}));
  const float e = std::exp(3.f);
  CHECK(x.grad().value()(0) == doctest::Approx((2 * e + 1) * e));
}

TEST_CASE("the graph is released after backward unless retain_graph") {
  const long before = live_records();
  Tensor x = from_vector({1.f, 2.f}, {2}).set_requires_grad(true);
  {
    Tensor y = tanh(x * 2.f);
    CHECK(live_records() == before + 2);
    y.backward(ones({2}), /*retain_graph=*/true);
    CHECK(live_records() == before + 2);
    y.backward(ones({2}));
    CHECK(live_records() == before);
    CHECK_THROWS_WITH_AS(y.backward(ones({2})), doctest::Contains("already released"), Error);
  }
  CHECK(live_records() == before);
}

TEST_CASE("no record or buffer outlives backward") {
  const long before = live_records();
  Tensor w = randn({4, 4}).set_requires_grad(true);
  std::weak_ptr<Node> first;
  {
    Tensor h = tanh(w * 2.f);
    first = h.grad_fn();
    Tensor loss = h * h;
    loss.backward(ones({4, 4}));
    CHECK(live_records() == before);  // closures and what they saved are gone
  }
  CHECK(first.expired());  // and so are the records themselves once the outputs are dropped
}

TEST_CASE("records are freed when an unused graph is dropped") {
  const long before = live_records();
  Tensor x = randn({3}).set_requires_grad(true);
  { Tensor y = exp(x) + x; }
  CHECK(live_records() == before);
}

TEST_CASE("NoGradGuard records nothing") {
  Tensor x = randn({3}).set_requires_grad(true);
  const long before = live_records();
  {
    NoGradGuard guard;
    Tensor y = x * 2.f;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(live_records() == before);
  }
  CHECK(is_grad_enabled());
  CHECK((x * 2.f).requires_grad());
}

TEST_CASE("no record when no input requires grad") {
  Tensor x = randn({3});
  Tensor y = exp(x) * 2.f;
  CHECK_FALSE(y.requires_grad());
  CHECK(y.grad_fn() == nullptr);
}

TEST_CASE("a chain of 100,000 ops neither overflows the stack in backward nor in destruction") {
  Tensor x = from_vector({0.5f}, {1}).set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.0f;
  y.backward(ones({1}));
  CHECK(x.grad().value()(0) == doctest::Approx(1.f));

  Tensor z = x;  // a chain dropped without backward is torn down without recursion too
  for (int i = 0; i < 100000; ++i) z = z + 0.f;
}

TEST_CASE("backward on bad roots throws") {
  Tensor plain = randn({2});
  CHECK_THROWS_WITH_AS(plain.backward(), doctest::Contains("does not require grad"), Error);
  Tensor x = randn({2}).set_requires_grad(true);
  Tensor y = x * 2.f;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("shape [2]"), Error);
  CHECK_THROWS_WITH_AS(y.backward(ones({3})), doctest::Contains("expected the output's shape [2]"), Error);
}

TEST_CASE("a backward closure that writes a gradient of the wrong shape is caught in one place") {
  Tensor x = randn({2, 3}).set_requires_grad(true);
  Tensor y = record("broken", Array(x.value()), {x},
                    [](BackwardContext& ctx) { ctx.accumulate(0, Array::from_shape({3, 2})); });
  CHECK_THROWS_WITH_AS(y.backward(ones({2, 3})),
                       doctest::Contains("broken: backward produced a gradient of shape [3,2] for input 0 of shape [2,3]"),
                       Error);
}

TEST_CASE("set_requires_grad on an op's output throws; detach makes a leaf sharing the value") {
  Tensor x = randn({2}).set_requires_grad(true);
  Tensor y = x * 2.f;
  CHECK_THROWS_AS(y.set_requires_grad(true), Error);
  Tensor d = y.detach();
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  CHECK(&d.value() == &y.value());
}

TEST_CASE("a leaf's own backward accumulates the given gradient") {
  Tensor x = randn({2}).set_requires_grad(true);
  x.backward(full({2}, 3.f));
  CHECK(x.grad().value()(1) == doctest::Approx(3.f));
}

TEST_CASE("backward(gradient) reads the gradient where it is, and copies it when backward writes there") {
  Tensor x = from_vector({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3}).set_requires_grad(true);
  Tensor w = from_vector({1.f, 0.f, 2.f, 0.f, 1.f, 0.f, -1.f, 0.f, 1.f}, {3, 3});
  const auto times_w_transposed = [&](const Array& a) {  // a w^T, (2, 3)
    Array out = Array::from_shape({2, 3});
    for (std::size_t i = 0; i < 2; ++i) {
      for (std::size_t j = 0; j < 3; ++j) {
        float sum = 0.f;
        for (std::size_t k = 0; k < 3; ++k) sum += a(i, k) * w.value()(j, k);
        out(i, j) = sum;
      }
    }
    return out;
  };
  // The gradient held by its tensor alone: read in place, left as it was, and read again by a
  // second backward through the same records.
  const Tensor dy = from_vector({1.f, -1.f, 2.f, 0.5f, 0.f, -2.f}, {2, 3});
  Tensor y = matmul(x, w);
  y.backward(dy, true);
  const Array expected = times_w_transposed(dy.value());
  CHECK(xt::allclose(x.grad().value(), expected));
  y.backward(dy);
  CHECK(xt::allclose(x.grad().value(), 2.f * expected));
  CHECK(dy.value()(1, 2) == -2.f);
  // a's own gradient as the output gradient of a backward that adds into a's gradient: the
  // product would read g while it writes a.grad, so backward takes a copy first. a.grad = g + g b^T.
  const std::size_t n = 96;
  Tensor a = randn({n, n}).set_requires_grad(true);
  const Tensor b = randn({n, n});
  matmul(a, b).backward(randn({n, n}));
  const Array g = a.grad().value();
  matmul(a, b).backward(a.grad());
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double expected_ij = g(i, j);
      for (std::size_t k = 0; k < n; ++k) expected_ij += static_cast<double>(g(i, k)) * b.value()(j, k);
      worst = std::max(worst, std::abs(a.grad().value()(i, j) - expected_ij));
    }
  }
  CHECK(worst < 1e-3);
}

TEST_CASE("a backward that throws lets go of the given gradient: a later backward through the record is right") {
  bool fail = true;
  Tensor x = randn({2, 3}).set_requires_grad(true);
  Tensor y = record("fails once", Array(x.value()), {x}, [&fail](BackwardContext& ctx) {
    if (fail) throw Error("fails once");
    ctx.accumulate(0, Array(ctx.grad_output()));
  });
  {
    const Tensor dy = full({2, 3}, 5.f);
    CHECK_THROWS_WITH_AS(y.backward(dy, true), doctest::Contains("fails once"), Error);
  }  // dy is gone
  fail = false;
  (y * 2.f).backward(ones({2, 3}));
  CHECK(xt::allclose(x.grad().value(), full({2, 3}, 2.f).value()));
}

TEST_CASE("a value modified in place after an op used it makes backward throw, naming the op") {
  Tensor x = randn({3, 4}).set_requires_grad();
  Tensor w = randn({3, 4}).set_requires_grad();
  {
    Tensor loss = sum(mul(x, w));
    w.mutable_value() *= 2.f;  // mul saved w for x's gradient
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("input 1 of 'mul' (shape [3,4]) was modified in place"),
                         Error);
  }
  {
    Tensor y = exp(x);
    y.mutable_value() += 1.f;  // exp's backward reads its output
    Tensor loss = sum(y);      // recorded after the change: sum itself is fine
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("the output of 'exp' was modified in place"), Error);
  }
  {
    Tensor loss = sum(mul(x, w));
    Tensor shared = w.detach();  // the same value, the same count
    shared.mutable_value() -= 1.f;
    CHECK(shared.version() == w.version());
    CHECK_THROWS_AS(loss.backward(), Error);
  }
  // Modifying after backward (an optimizer step) is what training does.
  x.zero_grad();
  Tensor loss = sum(mul(x, w));
  loss.backward();
  x.mutable_value() -= 0.1f * x.grad().value();
  Tensor again = sum(mul(x, w));
  CHECK_NOTHROW(again.backward());
}

TEST_CASE("anomaly mode names the first op whose forward or backward made a NaN or Inf") {
  Tensor x = Tensor(Array{1.f, -1.f, 4.f}).set_requires_grad();
  {
    // Forward: log of a negative number.
    CHECK_NOTHROW(log(x));  // off by default: a NaN passes silently
    DetectAnomalyGuard anomaly;
    CHECK(is_anomaly_enabled());
    CHECK_THROWS_WITH_AS(log(x), doctest::Contains("anomaly: the forward of 'log' produced NaN at flat index 1"),
                         Error);
  }
  CHECK_FALSE(is_anomaly_enabled());
  {
    // Backward: sqrt is finite at 0, its derivative 1 / (2 sqrt(x)) is not.
    Tensor z = Tensor(Array{0.f, 4.f}).set_requires_grad();
    Tensor loss = sum(sqrt(z));
    DetectAnomalyGuard anomaly;
    CHECK_THROWS_WITH_AS(loss.backward(),
                         doctest::Contains("anomaly: the backward of 'sqrt' produced inf at flat index 0 of the "
                                           "gradient of its input 0 (shape [2])"),
                         Error);
  }
  {
    DetectAnomalyGuard anomaly;
    Tensor ok = sum(mul(x, x));
    CHECK_NOTHROW(ok.backward());  // finite values pass
  }
}

TEST_CASE("to_dot draws the tape: ops, named leaves, shapes") {
  Tensor w = randn({3, 2}).set_requires_grad();
  Tensor b = zeros({2}).set_requires_grad();
  Tensor x = randn({4, 3});  // needs no gradient: not drawn
  Tensor loss = sum(relu(add(matmul(x, w), b)));
  const std::string dot = to_dot(loss, {{"layer.weight", w}, {"layer.bias", b}});
  CHECK(dot.rfind("digraph tape {", 0) == 0);
  for (const char* op : {"matmul #", "add #", "relu #", "sum #"}) CHECK(dot.find(op) != std::string::npos);
  CHECK(dot.find("layer.weight\\n[3,2]") != std::string::npos);
  CHECK(dot.find("layer.bias\\n[2]") != std::string::npos);
  CHECK(dot.find("label=\"[4,2]\"") != std::string::npos);  // matmul's output into add
  CHECK(dot.find("output []") != std::string::npos);
  CHECK(dot.back() == '\n');
  // One box per op, however many times it is reached.
  std::size_t boxes = 0;
  for (std::size_t at = dot.find("shape=box"); at != std::string::npos; at = dot.find("shape=box", at + 1)) ++boxes;
  CHECK(boxes == 4);
}

TEST_CASE("A post-accumulate-grad hook runs once per backward, when the leaf's gradient is final") {
  Tensor w = full({2}, 3.f).set_requires_grad();
  Tensor b = full({2}, 1.f).set_requires_grad();
  Tensor unused = full({2}, 1.f).set_requires_grad();
  std::vector<std::pair<std::string, float>> seen;  // which leaf, and its grad[0] when the hook ran
  w.register_post_accumulate_grad_hook([&](const Tensor& leaf) { seen.emplace_back("w", leaf.grad().value()(0)); });
  const auto id_b =
      b.register_post_accumulate_grad_hook([&](const Tensor& leaf) { seen.emplace_back("b", leaf.grad().value()(0)); });
  unused.register_post_accumulate_grad_hook([&](const Tensor&) { seen.emplace_back("unused", 0.f); });
  const Tensor x = full({2}, 2.f);
  // w feeds two ops far apart on the tape: its hook waits for both. d/dw = x + 2 w = 8.
  Tensor loss = sum(add(mul(w, x), mul(b, b))) + sum(mul(w, w));
  loss.backward();
  REQUIRE(seen.size() == 2);  // `unused` is not in this graph
  for (const auto& [name, grad0] : seen) CHECK(grad0 == (name == "w" ? 8.f : 2.f));
  seen.clear();
  b.remove_post_accumulate_grad_hook(id_b);
  sum(add(mul(w, x), b)).backward();  // accumulates onto w's 8: 8 + 2
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == std::pair<std::string, float>{"w", 10.f});
  CHECK_THROWS_WITH_AS(mul(w, x).register_post_accumulate_grad_hook([](const Tensor&) {}),
                       doctest::Contains("not a leaf"), Error);
}
