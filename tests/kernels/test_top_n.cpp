// kernels::top_n against a stable sort of the indices: every row length around the vector width,
// ties, rows whose best come last (no vector passed over) or first (all passed over), long rows
// of random values (the two-pass path), -inf and NaN (the single pass).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <xgrad/kernels/top_n.hpp>

namespace {

/// The n first of the indices stably sorted by value, largest first, NaNs after every number.
std::vector<std::size_t> sorted_top(const std::vector<float>& x, std::size_t n) {
  std::vector<std::size_t> order(x.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return !std::isnan(x[a]) && (std::isnan(x[b]) || x[a] > x[b]);
  });
  order.resize(std::min(n, x.size()));
  return order;
}

}  // namespace

TEST_CASE("top_n: the n largest, largest first, ties to the lower index, for every length and n") {
  std::vector<std::size_t> best;
  for (std::size_t size = 0; size <= 70; ++size) {
    for (const std::size_t n : {1u, 2u, 3u, 8u, 20u}) {
      for (int pattern = 0; pattern < 4; ++pattern) {
        std::vector<float> x(size);
        for (std::size_t i = 0; i < size; ++i) {
          switch (pattern) {
            case 0: x[i] = static_cast<float>((i * 37) % 11); break;   // many ties
            case 1: x[i] = static_cast<float>(i); break;                // rising: every vector holds new best ones
            case 2: x[i] = -static_cast<float>(i); break;               // falling: every later vector passed over
            default: x[i] = std::sin(static_cast<float>(i) * 1.7f); break;
          }
        }
        CAPTURE(size);
        CAPTURE(n);
        CAPTURE(pattern);
        xgrad::kernels::top_n(x.data(), size, n, best);
        CHECK(best == sorted_top(x, n));
      }
    }
  }
}

TEST_CASE("top_n: long rows of random values, with ties, every n up to past the vector width") {
  std::mt19937 generator(7);
  std::normal_distribution<float> normal(0.f, 3.f);
  std::vector<std::size_t> best;
  for (const std::size_t size : {100u, 1000u, 1003u}) {
    for (std::size_t n = 1; n <= 40; ++n) {
      for (const bool rounded : {false, true}) {  // rounded: many equal values
        std::vector<float> x(size);
        for (float& v : x) v = rounded ? std::round(normal(generator)) : normal(generator);
        CAPTURE(size);
        CAPTURE(n);
        CAPTURE(rounded);
        xgrad::kernels::top_n(x.data(), size, n, best);
        CHECK(best == sorted_top(x, n));
      }
    }
  }
}

TEST_CASE("top_n: -inf ranks last among numbers, a NaN after every number") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x(40, -inf);
  x[3] = 1.f;
  x[33] = 2.f;
  x[20] = nan;
  std::vector<std::size_t> best;
  xgrad::kernels::top_n(x.data(), x.size(), 2, best);
  CHECK(best == std::vector<std::size_t>{33, 3});
  xgrad::kernels::top_n(x.data(), x.size(), 3, best);
  CHECK(best == std::vector<std::size_t>{33, 3, 0});
  xgrad::kernels::top_n(x.data(), x.size(), 0, best);
  CHECK(best.empty());
  // NaNs first in the row, among numbers, in a row of fewer numbers than n
  for (const std::size_t size : {5u, 40u, 1000u}) {
    std::mt19937 generator(static_cast<unsigned>(size));
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (int pattern = 0; pattern < 3; ++pattern) {
      std::vector<float> y(size);
      for (std::size_t i = 0; i < size; ++i) {
        const bool is_nan = pattern == 0 ? i < 3 : pattern == 1 ? i % 7 == 2 : i % 5 != 4;
        y[i] = is_nan ? nan : uniform(generator);
      }
      for (const std::size_t n : {1u, 2u, 4u, 8u, 16u, 17u, 300u}) {
        CAPTURE(size);
        CAPTURE(pattern);
        CAPTURE(n);
        xgrad::kernels::top_n(y.data(), size, n, best);
        CHECK(best == sorted_top(y, n));
      }
    }
  }
}
