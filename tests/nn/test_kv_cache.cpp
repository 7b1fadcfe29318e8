// nn::KVCache: appended keys and values are kept in order, the buffers grow by doubling (so a
// long generation copies O(T) rows), and mismatched shapes are refused with the shapes named.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

/// (B, T, D) with element (b, t, d) = 1000 b + 10 (first + t) + d: each position recognisable.
Tensor positions(std::size_t batch, std::size_t first, std::size_t t, std::size_t d) {
  Array x = Array::from_shape({batch, t, d});
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t i = 0; i < t; ++i) {
      for (std::size_t j = 0; j < d; ++j) x(b, i, j) = static_cast<float>(1000 * b + 10 * (first + i) + j);
    }
  }
  return Tensor(x);
}

}  // namespace

TEST_CASE("KVCache keeps every appended position in order, growing in place") {
  nn::KVCache cache;
  CHECK(cache.length() == 0);
  CHECK(cache.batch() == 0);
  cache.append(positions(2, 0, 5, 3), positions(2, 0, 5, 4));  // a prompt of 5
  std::size_t grown = 0, last_capacity = cache.capacity();
  for (std::size_t t = 5; t < 100; ++t) {
    cache.append(positions(2, t, 1, 3), positions(2, t, 1, 4));  // then one at a time
    if (cache.capacity() != last_capacity) {
      CHECK(cache.capacity() >= 2 * last_capacity);  // doubling: few copies in all
      ++grown;
      last_capacity = cache.capacity();
    }
  }
  CHECK(grown <= 3);  // 16 -> 32 -> 64 -> 128
  CHECK(cache.length() == 100);
  CHECK(cache.batch() == 2);
  const Array& k = cache.keys().value();    // (2, capacity, 3)
  const Array& v = cache.values().value();  // (2, capacity, 4)
  for (std::size_t b = 0; b < 2; ++b) {
    for (std::size_t t = 0; t < 100; ++t) {
      CHECK(k(b, t, 2) == static_cast<float>(1000 * b + 10 * t + 2));
      CHECK(v(b, t, 3) == static_cast<float>(1000 * b + 10 * t + 3));
    }
  }
}

TEST_CASE("KVCache refuses keys and values that do not match it") {
  nn::KVCache cache;
  CHECK_THROWS_WITH_AS(cache.append(positions(2, 0, 3, 4), positions(2, 0, 2, 4)),
                       doctest::Contains("keys [2,3,4] and values [2,2,4]"), Error);
  cache.append(positions(2, 0, 3, 4), positions(2, 0, 3, 4));
  CHECK_THROWS_WITH_AS(cache.append(positions(3, 3, 1, 4), positions(3, 3, 1, 4)), doctest::Contains("batch 2"),
                       Error);
  CHECK_THROWS_WITH_AS(cache.append(positions(2, 3, 1, 5), positions(2, 3, 1, 4)), doctest::Contains("widths 4"),
                       Error);
  CHECK(cache.length() == 3);
}
