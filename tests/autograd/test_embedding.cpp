// embedding: row gather forward, scatter-add backward, padding_idx, bad indices.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {
/// A mask from 0/1 values in row-major order (braced bool lists are ambiguous for xtensor).
Mask make_mask(const std::vector<int>& bits, const Shape& shape) {
  Mask mask = Mask::from_shape(shape);
  std::copy(bits.begin(), bits.end(), mask.begin());
  return mask;
}
/// A (V, D) table whose entry [v, d] is 10 v + d: every looked-up value names its row.
Tensor numbered_table(std::size_t V, std::size_t D) {
  Array w = Array::from_shape({V, D});
  for (std::size_t v = 0; v < V; ++v)
    for (std::size_t d = 0; d < D; ++d) w(v, d) = 10.f * v + d;
  return Tensor(w);
}
}  // namespace

TEST_CASE("embedding gathers rows for indices of any rank") {
  Tensor w = numbered_table(5, 3);

  Indices ids2 = {{1, 4}, {1, 0}};
  Tensor y = embedding(ids2, w);
  CHECK(y.shape() == Shape{2, 2, 3});
  CHECK(y.value()(0, 0, 2) == 12.f);
  CHECK(y.value()(0, 1, 0) == 40.f);
  CHECK(y.value()(1, 0, 1) == 11.f);
  CHECK(y.value()(1, 1, 2) == 2.f);

  Indices ids0 = 3;  // a 0-d index gives one row of shape (D)
  Tensor y0 = embedding(ids0, w);
  CHECK(y0.shape() == Shape{3});
  CHECK(y0.value()(1) == 31.f);

  Indices ids3 = {{{0, 2}}, {{4, 4}}};  // (2, 1, 2)
  Tensor y3 = embedding(ids3, w);
  CHECK(y3.shape() == Shape{2, 1, 2, 3});
  CHECK(y3.value()(1, 0, 1, 2) == 42.f);

  Indices empty = Indices::from_shape({0});
  CHECK(embedding(empty, w).shape() == Shape{0, 3});
}

TEST_CASE("embedding of a large batch (threaded copy) matches the table") {
  Tensor w = randn({50, 64});
  Indices ids = Indices::from_shape({40, 32});
  for (std::size_t i = 0; i < ids.size(); ++i) ids.data()[i] = static_cast<std::int64_t>((i * 7) % 50);
  Tensor y = embedding(ids, w);
  bool same = true;
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (std::size_t d = 0; d < 64; ++d) same = same && y.value().data()[i * 64 + d] == w.value()(ids.data()[i], d);
  CHECK(same);
}

TEST_CASE("embedding backward scatter-adds: repeated indices accumulate") {
  Tensor w = randn({5, 2}).set_requires_grad(true);
  Indices ids = {1, 3, 1, 1};
  Tensor g = from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  embedding(ids, w).backward(g);
  const Array& gw = w.grad().value();
  CHECK(gw(1, 0) == doctest::Approx(1 + 5 + 7));
  CHECK(gw(1, 1) == doctest::Approx(2 + 6 + 8));
  CHECK(gw(3, 0) == doctest::Approx(3));
  CHECK(gw(3, 1) == doctest::Approx(4));
  CHECK(gw(0, 0) == 0.f);
  CHECK(gw(2, 1) == 0.f);
  CHECK(gw(4, 0) == 0.f);
}

TEST_CASE("embedding: the padding row is looked up as usual but gets no gradient") {
  Tensor w = numbered_table(5, 2).set_requires_grad(true);
  Indices ids = {{0, 2}, {2, 4}};
  Tensor y = embedding(ids, w, /*padding_idx=*/2);
  CHECK(y.value()(0, 1, 0) == 20.f);  // as torch.nn.functional.embedding: the row itself is not zeroed
  y.backward(ones({2, 2, 2}));
  const Array& gw = w.grad().value();
  CHECK(gw(0, 0) == 1.f);
  CHECK(gw(2, 0) == 0.f);
  CHECK(gw(2, 1) == 0.f);
  CHECK(gw(4, 1) == 1.f);

  Tensor w2 = numbered_table(5, 2).set_requires_grad(true);
  embedding(ids, w2, /*padding_idx=*/-1).backward(ones({2, 2, 2}));  // -1 is row 4
  CHECK(w2.grad().value()(4, 0) == 0.f);
  CHECK(w2.grad().value()(2, 0) == 2.f);
}

TEST_CASE("embedding gradcheck: repeated indices, several ranks, padding_idx") {
  Tensor w = randn({6, 4}).set_requires_grad(true);
  Indices repeated = {{1, 5, 1}, {0, 1, 5}};
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return embedding(repeated, in[0]); }, {w}));
  Indices scalar = 2;
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return embedding(scalar, in[0]); }, {w}));

  // With padding_idx the padding row's gradient is 0 by convention, not d out / d weight. Zeroing
  // the padded outputs makes that the true derivative, so the whole gradient can be checked.
  Indices padded = {{3, 0, 0}, {3, 3, 1}};
  Mask is_padding = make_mask({0, 1, 1, 0, 0, 0}, {2, 3, 1});  // (2, 3, 1): ids == 0
  for (std::int64_t padding_idx : {0, -6}) {
    CHECK(gradcheck(
        [&](const std::vector<Tensor>& in) {
          return masked_fill(embedding(padded, in[0], padding_idx), is_padding, 0.f);
        },
        {w}));
  }
}

TEST_CASE("embedding rejects bad indices, bad padding_idx and a bad table") {
  Tensor w = randn({5, 3});
  Indices high = {{0, 1}, {5, 2}};
  CHECK_THROWS_WITH_AS(embedding(high, w),
                       doctest::Contains("embedding: index 5 at position [1,0] of the indices (shape [2,2]) is out "
                                         "of range for a table of 5 rows (expected 0 to 4)"),
                       Error);
  Indices negative = {0, -1};
  CHECK_THROWS_WITH_AS(embedding(negative, w), doctest::Contains("index -1 at position [1]"), Error);
  Indices fine = {0, 4};
  CHECK_THROWS_WITH_AS(embedding(fine, w, 5), doctest::Contains("padding_idx 5 is out of range for a table of 5 rows"),
                       Error);
  CHECK_THROWS_WITH_AS(embedding(fine, w, -6), doctest::Contains("padding_idx -6 is out of range"), Error);
  CHECK_THROWS_WITH_AS(embedding(fine, randn({5})), doctest::Contains("expected a weight of shape [V, D], got shape [5]"),
                       Error);
  CHECK_THROWS_WITH_AS(embedding(fine, Tensor()), doctest::Contains("undefined"), Error);
}
