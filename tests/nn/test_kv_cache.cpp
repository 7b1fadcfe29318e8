// nn::KVCache: appended keys and values are kept in order without copying earlier positions,
// reorder() moves paths and not keys (beams share their prefix), gathered attention over it
// equals attention over the keys each row reads, and mismatched shapes are refused.
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

TEST_CASE("KVCache keeps every appended position in order, never copying earlier ones") {
  nn::KVCache cache;
  CHECK(cache.length() == 0);
  CHECK(cache.batch() == 0);
  cache.append(positions(2, 0, 5, 3), positions(2, 0, 5, 4));  // a prompt of 5
  const float* first_key = cache.gathered().keys[0]->data();
  for (std::size_t t = 5; t < 100; ++t) cache.append(positions(2, t, 1, 3), positions(2, t, 1, 4));  // then one at a time
  CHECK(cache.gathered().keys[0]->data() == first_key);  // position 0 stayed where it was
  CHECK(cache.length() == 100);
  CHECK(cache.batch() == 2);
  const Array k = cache.keys().value();    // (2, 100, 3)
  const Array v = cache.values().value();  // (2, 100, 4)
  REQUIRE(k.shape()[1] == 100);
  for (std::size_t b = 0; b < 2; ++b) {
    for (std::size_t t = 0; t < 100; ++t) {
      CHECK(k(b, t, 2) == static_cast<float>(1000 * b + 10 * t + 2));
      CHECK(v(b, t, 3) == static_cast<float>(1000 * b + 10 * t + 3));
    }
  }
}

TEST_CASE("KVCache::reorder makes rows follow rows by their paths: the prefix is shared, not copied") {
  nn::KVCache cache;
  cache.append(positions(2, 0, 3, 2), positions(2, 0, 3, 2));
  const float* block = cache.gathered().keys[2]->data();
  cache.reorder({1, 1, 0});  // three beams: two follow row 1, one row 0
  CHECK(cache.batch() == 3);
  CHECK(cache.gathered().keys[2]->data() == block);
  cache.append(positions(3, 3, 1, 2), positions(3, 3, 1, 2));  // beam i feeds its own token
  const Array k = cache.keys().value();  // (3, 4, 2)
  const std::size_t parent[] = {1, 1, 0};
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t t = 0; t < 3; ++t) CHECK(k(i, t, 1) == static_cast<float>(1000 * parent[i] + 10 * t + 1));
    CHECK(k(i, 3, 1) == static_cast<float>(1000 * i + 30 + 1));
  }
  CHECK_THROWS_WITH_AS(cache.reorder({3}), doctest::Contains("row 3 of a batch of 3"), Error);
}

TEST_CASE("Attention over a KVCache's gathered rows equals attention over each row's keys") {
  Generator generator(3);
  const std::size_t heads = 2, d = 4;
  nn::KVCache cache;
  const Tensor k = randn({2, 5, d}, generator);
  const Tensor v = randn({2, 5, d}, generator);
  Mask padding = Mask::from_shape({2, 5});
  padding.fill(false);
  padding(0, 3) = true;  // row 0 ignores its position 3
  cache.append(k, v, &padding);
  cache.reorder({1, 0, 0});
  const Tensor q = randn({3, 1, d}, generator);
  const Array gathered = nn::functional::gathered_attention(q, cache.gathered(), heads).value();  // (3, 1, D)
  Mask reordered = Mask::from_shape({3, 5});  // the padding each row reads
  for (std::size_t s = 0; s < 5; ++s) {
    reordered(0, s) = padding(1, s);
    reordered(1, s) = reordered(2, s) = padding(0, s);
  }
  nn::functional::AttentionOptions options;
  options.key_padding_mask = reordered;
  const Array full =
      nn::functional::scaled_dot_product_attention(q, cache.keys(), cache.values(), heads, options).output.value();
  for (std::size_t i = 0; i < gathered.size(); ++i) CHECK(gathered.data()[i] == doctest::Approx(full.data()[i]).epsilon(1e-5));
}

TEST_CASE("KVCache refuses keys, values and padding that do not match it") {
  nn::KVCache cache;
  CHECK_THROWS_WITH_AS(cache.append(positions(2, 0, 3, 4), positions(2, 0, 2, 4)),
                       doctest::Contains("keys [2,3,4] and values [2,2,4]"), Error);
  cache.append(positions(2, 0, 3, 4), positions(2, 0, 3, 4));
  CHECK_THROWS_WITH_AS(cache.append(positions(3, 3, 1, 4), positions(3, 3, 1, 4)), doctest::Contains("batch 2"),
                       Error);
  CHECK_THROWS_WITH_AS(cache.append(positions(2, 3, 1, 5), positions(2, 3, 1, 4)), doctest::Contains("widths 4"),
                       Error);
  Mask wrong = Mask::from_shape({2, 2});
  CHECK_THROWS_WITH_AS(cache.append(positions(2, 3, 1, 4), positions(2, 3, 1, 4), &wrong),
                       doctest::Contains("padding [2,2] must be (B, T) = [2,1]"), Error);
  CHECK(cache.length() == 3);
}
