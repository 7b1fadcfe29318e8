// dropout: seeded masks, inverted scaling, statistics, gradient, eval mode, bad p.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

TEST_CASE("dropout in eval mode or with p = 0 returns the input itself, unrecorded") {
  Tensor x = randn({3, 4}).set_requires_grad(true);
  Generator generator(1);
  const std::string before = generator.state();
  Tensor eval = dropout(x, 0.5f, /*training=*/false, generator);
  CHECK(eval.impl() == x.impl());
  Tensor zero_p = dropout(x, 0.f, /*training=*/true, generator);
  CHECK(zero_p.impl() == x.impl());
  CHECK(generator.state() == before);  // nothing drawn
}

TEST_CASE("dropout drops element i where draw i of a Philox stream keyed by the generator is below p") {
  const float p = 0.4f;
  Tensor x = randn({5, 7});
  Generator generator(123), replay(123);
  Tensor y = dropout(x, p, true, generator);
  const PhiloxStream stream = replay.philox_stream();  // the one draw dropout takes
  CHECK(generator.state() == replay.state());
  bool ok = true;
  for (std::size_t i = 0; i < x.numel(); ++i) {
    const bool dropped = static_cast<float>(stream.bits(i)) / 16777216.f < p;
    const float expected = dropped ? 0.f : x.value().data()[i] / (1.f - p);
    ok = ok && y.value().data()[i] == doctest::Approx(expected);
  }
  CHECK(ok);
}

TEST_CASE("dropout: the mask does not depend on the thread count") {
  Tensor x = ones({300, 1000});  // long enough to go over the threads
  const int threads = get_num_threads();
  set_num_threads(1);
  Generator g1(11), g2(11);
  const Array one = dropout(x, 0.3f, true, g1).value();
  set_num_threads(2);
  const Array two = dropout(x, 0.3f, true, g2).value();
  set_num_threads(threads);
  CHECK(one == two);
}

TEST_CASE("dropout: the same seed gives the same mask, another seed another") {
  Tensor x = ones({64, 64});
  Generator g1(7), g2(7), g3(8);
  Array a = dropout(x, 0.5f, true, g1).value();
  Array b = dropout(x, 0.5f, true, g2).value();
  Array c = dropout(x, 0.5f, true, g3).value();
  CHECK(a == b);
  CHECK_FALSE(a == c);
  Array next = dropout(x, 0.5f, true, g1).value();  // the generator moved on: a new mask
  CHECK_FALSE(a == next);
}

TEST_CASE("dropout statistics: fraction dropped ~ p, mean preserved") {
  const std::size_t n = 200000;
  Generator generator(2024);
  for (float p : {0.1f, 0.3f, 0.75f}) {
    Tensor x = uniform({n}, 0.5f, 1.5f, generator);
    Tensor y = dropout(x, p, true, generator);
    std::size_t dropped = 0;
    double in_sum = 0, out_sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      dropped += y.value()(i) == 0.f;
      in_sum += x.value()(i);
      out_sum += y.value()(i);
    }
    // Binomial standard deviation of the fraction: sqrt(p(1-p)/n) <= 0.0012; allow ~6 of them.
    CHECK(std::abs(static_cast<double>(dropped) / n - p) < 0.0075);
    CHECK(std::abs(out_sum / in_sum - 1.0) < 0.02);
  }
}

TEST_CASE("dropout gradient is the mask / (1 - p) times the upstream gradient") {
  const float p = 0.25f;
  Tensor x = uniform({40, 30}, 1.f, 2.f).set_requires_grad(true);  // nonzero: y == 0 iff dropped
  Generator generator(99);
  Tensor y = dropout(x, p, true, generator);
  Tensor g = randn({40, 30});
  y.backward(g);
  bool ok = true;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < x.numel(); ++i) {
    const bool keep = y.value().data()[i] != 0.f;
    kept += keep;
    const float expected = keep ? g.value().data()[i] / (1.f - p) : 0.f;
    ok = ok && x.grad().value().data()[i] == doctest::Approx(expected);
  }
  CHECK(ok);
  CHECK(kept > 0);
  CHECK(kept < x.numel());
}

TEST_CASE("dropout gradcheck (a fixed seed per call: the same mask each time)") {
  Tensor x = randn({4, 5}).set_requires_grad(true);
  for (float p : {0.2f, 0.5f, 0.9f}) {
    CHECK(gradcheck(
        [p](const std::vector<Tensor>& in) {
          Generator generator(31);
          return dropout(in[0], p, true, generator);
        },
        {x}));
  }
}

TEST_CASE("dropout with p = 1 gives zeros and a zero gradient") {
  Tensor x = randn({3, 3}).set_requires_grad(true);
  Tensor y = dropout(x, 1.f, true);
  CHECK(y.value() == Array(xt::zeros<float>({3, 3})));
  y.backward(ones({3, 3}));
  CHECK(x.grad().value() == Array(xt::zeros<float>({3, 3})));
}

TEST_CASE("dropout rejects p outside [0, 1]") {
  Tensor x = randn({2});
  CHECK_THROWS_WITH_AS(dropout(x, 1.5f, true),
                       doctest::Contains("dropout: probability has to be between 0 and 1, but got 1.5"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, -0.1f, true), doctest::Contains("but got -0.1"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, std::numeric_limits<float>::quiet_NaN(), true), doctest::Contains("but got nan"),
                       Error);
  CHECK_THROWS_AS(dropout(x, 2.f, false), Error);  // checked in eval mode too, as PyTorch
  CHECK_THROWS_WITH_AS(dropout(Tensor(), 0.5f, true), doctest::Contains("undefined"), Error);
}
