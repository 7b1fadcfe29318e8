// masked_fill and where: values, broadcasting patterns, -inf attention masks, gradients, bad shapes.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {
/// A mask from 0/1 values in row-major order (braced bool lists are ambiguous for xtensor).
Mask make_mask(const std::vector<int>& bits, const Shape& shape) {
  Mask mask = Mask::from_shape(shape);
  std::copy(bits.begin(), bits.end(), mask.begin());
  return mask;
}
constexpr float kInf = std::numeric_limits<float>::infinity();

GradcheckFn fill_with(const Mask& mask, float value) {
  return [mask, value](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, value); };
}
GradcheckFn where_with(const Mask& condition) {
  return [condition](const std::vector<Tensor>& in) { return xgrad::where(condition, in[0], in[1]); };
}
}  // namespace

TEST_CASE("masked_fill puts the value where the mask is true") {
  Tensor x = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Mask same = make_mask({1, 0, 0, 0, 0, 1}, {2, 3});
  Array y = masked_fill(x, same, -7.f).value();
  CHECK(y == Array{{-7, 2, 3}, {4, 5, -7}});

  Mask row = make_mask({0, 1, 0}, {3});  // (3) over (2, 3)
  CHECK(masked_fill(x, row, 0.f).value() == Array{{1, 0, 3}, {4, 0, 6}});

  Mask column = make_mask({1, 0}, {2, 1});  // (2, 1) over (2, 3)
  CHECK(masked_fill(x, column, 9.f).value() == Array{{9, 9, 9}, {4, 5, 6}});

  Mask scalar = make_mask({1}, {});  // 0-d
  CHECK(masked_fill(x, scalar, 1.f).value() == Array{{1, 1, 1}, {1, 1, 1}});

  Tensor s = scalar_tensor(3.f);  // 0-d input and mask
  Mask off = make_mask({0}, {});
  CHECK(masked_fill(s, off, 1.f).item() == 3.f);
}

TEST_CASE("masked_fill with -inf: a causal attention mask over (B, H, T, T) scores") {
  const std::size_t B = 2, H = 3, T = 4;
  Tensor scores = randn({B, H, T, T}).set_requires_grad(true);
  Mask causal = Mask::from_shape({T, T});
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = 0; j < T; ++j) causal(i, j) = j > i;
  Tensor y = masked_fill(scores, causal, -kInf);
  bool values_ok = true;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < T; ++i)
        for (std::size_t j = 0; j < T; ++j)
          values_ok = values_ok && (j > i ? y.value()(b, h, i, j) == -kInf
                                          : y.value()(b, h, i, j) == scores.value()(b, h, i, j));
  CHECK(values_ok);

  y.backward(full({B, H, T, T}, 2.f));
  bool grads_ok = true;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < T; ++i)
        for (std::size_t j = 0; j < T; ++j)
          grads_ok = grads_ok && scores.grad().value()(b, h, i, j) == (j > i ? 0.f : 2.f);
  CHECK(grads_ok);

  // A key-padding mask (B, 1, 1, T) broadcast over heads and queries.
  Mask padding = Mask::from_shape({B, 1, 1, T});
  padding.fill(false);
  padding(1, 0, 0, 3) = true;
  Array z = masked_fill(scores, padding, -kInf).value();
  CHECK(z(1, 2, 0, 3) == -kInf);
  CHECK(z(1, 2, 0, 2) == scores.value()(1, 2, 0, 2));
  CHECK(z(0, 2, 0, 3) == scores.value()(0, 2, 0, 3));
}

TEST_CASE("masked_fill gives an exact 0 gradient at masked positions, even for an inf upstream gradient") {
  Tensor x = randn({2, 3}).set_requires_grad(true);
  Mask column = make_mask({1, 0}, {2, 1});
  masked_fill(x, column, 0.f).backward(from_vector({kInf, kInf, kInf, 1, 1, 1}, {2, 3}));
  CHECK(x.grad().value()(0, 1) == 0.f);
  CHECK(x.grad().value()(1, 1) == 1.f);
}

TEST_CASE("masked_fill gradcheck: same shape and each broadcasting pattern") {
  Tensor x = randn({2, 3, 4}).set_requires_grad(true);
  Mask same = Mask::from_shape({2, 3, 4});
  for (std::size_t i = 0; i < same.size(); ++i) same.data()[i] = i % 3 == 0;
  CHECK(gradcheck(fill_with(same, 5.f), {x}));
  Mask last = make_mask({1, 0, 0, 1}, {4});  // (4)
  CHECK(gradcheck(fill_with(last, -1.f), {x}));
  Mask middle = make_mask({0, 1, 0}, {1, 3, 1});  // (1, 3, 1)
  CHECK(gradcheck(fill_with(middle, 0.f), {x}));
  Mask leading = make_mask({1, 0}, {2, 1, 1});  // (2, 1, 1)
  CHECK(gradcheck(fill_with(leading, 2.f), {x}));
  Mask scalar = make_mask({0}, {});
  CHECK(gradcheck(fill_with(scalar, 2.f), {x}));
}

TEST_CASE("masked_fill rejects a mask that would enlarge the input or does not broadcast") {
  Tensor x = randn({3});
  Mask bigger = Mask::from_shape({2, 3});
  CHECK_THROWS_WITH_AS(masked_fill(x, bigger, 0.f),
                       doctest::Contains("masked_fill: a mask of shape [2,3] would enlarge the input of shape [3]"),
                       Error);
  Mask stretched = Mask::from_shape({2, 1});
  CHECK_THROWS_WITH_AS(masked_fill(randn({1, 3}), stretched, 0.f), doctest::Contains("would enlarge"), Error);
  Mask wrong = Mask::from_shape({4});
  CHECK_THROWS_WITH_AS(masked_fill(randn({2, 3}), wrong, 0.f),
                       doctest::Contains("masked_fill: shapes [4] and [2,3] cannot be broadcast"), Error);
}

TEST_CASE("where picks a or b, all three broadcasting") {
  Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector({-1, -2, -3, -4, -5, -6}, {2, 3});
  Mask c = make_mask({1, 0, 1, 0, 0, 1}, {2, 3});
  CHECK(xgrad::where(c, a, b).value() == Array{{1, -2, 3}, {-4, -5, 6}});

  Mask column = make_mask({1, 0}, {2, 1});  // (2, 1)
  Tensor row = from_vector({10, 20, 30}, {3});
  Tensor zero = scalar_tensor(0.f);
  Tensor y = xgrad::where(column, row, zero);  // (2, 1), (3), () -> (2, 3)
  CHECK(y.value() == Array{{10, 20, 30}, {0, 0, 0}});

  Mask last = make_mask({0, 1, 1}, {3});   // (3)
  Tensor col = from_vector({1, 2}, {2, 1});
  Tensor single = from_vector({7}, {1});
  CHECK(xgrad::where(last, col, single).value() == Array{{7, 1, 1}, {7, 2, 2}});
}

TEST_CASE("where backward sends each gradient to the side picked, summed back over broadcasting") {
  Mask column = make_mask({1, 0}, {2, 1});
  Tensor a = from_vector({1, 2, 3}, {3}).set_requires_grad(true);
  Tensor b = scalar_tensor(0.f).set_requires_grad(true);
  xgrad::where(column, a, b).backward(from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
  CHECK(a.grad().value() == Array{1, 2, 3});
  CHECK(b.grad().value()() == doctest::Approx(4 + 5 + 6));
}

TEST_CASE("where gradcheck: same shapes and broadcasting patterns") {
  Tensor a = randn({2, 3}).set_requires_grad(true);
  Tensor b = randn({2, 3}).set_requires_grad(true);
  Mask same = make_mask({1, 0, 1, 0, 0, 1}, {2, 3});
  CHECK(gradcheck(where_with(same), {a, b}));

  Mask column = make_mask({1, 0}, {2, 1});           // (2, 1)
  Tensor row = randn({3}).set_requires_grad(true);
  Tensor scalar = randn({}).set_requires_grad(true);
  CHECK(gradcheck(where_with(column), {row, scalar}));  // -> (2, 3)

  Mask last = make_mask({0, 1, 1, 0}, {4});  // (4)
  Tensor tall = randn({3, 1}).set_requires_grad(true);
  Tensor cube = randn({2, 1, 1}).set_requires_grad(true);
  CHECK(gradcheck(where_with(last), {tall, cube}));  // -> (2, 3, 4)

  Tensor fixed = randn({2, 3});  // only one side requires grad
  CHECK(gradcheck(where_with(same), {fixed, b}));
}

TEST_CASE("where rejects shapes that do not broadcast together") {
  Mask c = Mask::from_shape({2, 3});
  CHECK_THROWS_WITH_AS(xgrad::where(c, randn({4}), randn({2, 3})),
                       doctest::Contains("where: condition [2,3], a [4] and b [2,3] cannot be broadcast together"),
                       Error);
  CHECK_THROWS_WITH_AS(xgrad::where(c, randn({2, 3}), randn({3, 3})), doctest::Contains("b [3,3]"), Error);
  CHECK_THROWS_WITH_AS(xgrad::where(c, Tensor(), randn({3})), doctest::Contains("undefined"), Error);
}
