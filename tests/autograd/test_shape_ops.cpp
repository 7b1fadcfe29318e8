// Shape ops: forward values as PyTorch gives them, a gradcheck per op and axis variant, composites
// after transpose/slice, the large-tensor kernel paths, and every bad-input message.
#include <doctest/doctest.h>

#include <numeric>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

Tensor param(const Shape& shape) { return randn(shape).set_requires_grad(true); }

/// 0, 1, 2, ... in `shape`: forward values are then easy to write by hand.
Tensor iota(const Shape& shape) {
  std::vector<float> v(numel_of(shape));
  std::iota(v.begin(), v.end(), 0.f);
  return from_vector(v, shape);
}

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.value().begin(), t.value().end()); }

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

/// The flat index of multi-index `index` in a contiguous array of `shape`.
std::size_t flat(const std::vector<std::size_t>& index, const Shape& shape) {
  std::size_t f = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + index[d];
  return f;
}

/// permute computed one element at a time: the reference for the tiled and parallel kernels.
std::vector<float> naive_permute(const Tensor& x, const std::vector<std::size_t>& perm) {
  const Shape in = x.shape();
  Shape out(perm.size());
  for (std::size_t d = 0; d < perm.size(); ++d) out[d] = in[perm[d]];
  std::vector<float> y(numel_of(out));
  std::vector<std::size_t> index(out.size(), 0), source(in.size());
  for (std::size_t i = 0; i < y.size(); ++i) {
    for (std::size_t d = 0; d < perm.size(); ++d) source[perm[d]] = index[d];
    y[i] = x.value().data()[flat(source, in)];
    for (std::size_t d = out.size(); d-- > 0;) {
      if (++index[d] < out[d]) break;
      index[d] = 0;
    }
  }
  return y;
}

}  // namespace

// --- reshape, view, flatten ----------------------------------------------------------------------

TEST_CASE("reshape and view keep the row-major order and infer one -1") {
  Tensor x = iota({2, 3});
  Tensor y = reshape(x, {3, -1});
  CHECK(y.shape() == Shape{3, 2});
  CHECK(values(y) == values(x));
  CHECK(reshape(x, {-1}).shape() == Shape{6});
  CHECK(view(x, {1, 6, 1}).shape() == Shape{1, 6, 1});
  CHECK(reshape(iota({0, 3}), {-1, 3}).shape() == Shape{0, 3});
  CHECK(reshape(iota({0, 3}), {3, 0}).shape() == Shape{3, 0});
  CHECK(reshape(scalar_tensor(2.f), {1, 1}).shape() == Shape{1, 1});
  CHECK(reshape(iota({1}), {}).shape() == Shape{});
  CHECK(reshape(x, {6}).grad_fn() == nullptr);  // no input requires grad: no record

  CHECK(gradcheck([](const std::vector<Tensor>& in) { return reshape(in[0], {3, -1}); }, {param({2, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return view(in[0], {-1, 2, 2}); }, {param({2, 4})}));
}

TEST_CASE("reshape rejects a wrong element count, two -1s and negative sizes") {
  Tensor x = iota({2, 5});
  CHECK_THROWS_WITH_AS(reshape(x, {3, -1}), doctest::Contains("reshape: shape [3,-1] is invalid for input of shape [2,5] (10 elements)"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {3, 4}), doctest::Contains("shape [3,4] is invalid for input of shape [2,5]"), Error);
  CHECK_THROWS_WITH_AS(view(x, {-1, -1}), doctest::Contains("view: shape [-1,-1] has more than one -1"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {2, -2}), doctest::Contains("size -2 at dimension 1"), Error);
  CHECK_THROWS_WITH_AS(reshape(iota({0, 3}), {3, 0, -1}), doctest::Contains("reshape: cannot infer the -1 of shape [3,0,-1] for input shape [0,3]"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {0, -1}), doctest::Contains("shape [0,-1] is invalid"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {1ll << 40, 1ll << 40, 1ll << 40}), doctest::Contains("is invalid"), Error);
  CHECK_THROWS_WITH_AS(reshape(Tensor(), {1}), doctest::Contains("reshape: the input tensor is undefined"), Error);
}

TEST_CASE("flatten merges an inclusive range of axes") {
  Tensor x = iota({2, 3, 4, 5});
  CHECK(flatten(x).shape() == Shape{120});
  CHECK(flatten(x, 1).shape() == Shape{2, 60});
  CHECK(flatten(x, 1, 2).shape() == Shape{2, 12, 5});
  CHECK(flatten(x, -3, -2).shape() == Shape{2, 12, 5});
  CHECK(values(flatten(x, 1, 2)) == values(x));
  CHECK(flatten(x, 2, 2).impl() == x.impl());  // nothing to merge: x itself, as PyTorch
  CHECK(flatten(scalar_tensor(3.f)).shape() == Shape{1});

  CHECK(gradcheck([](const std::vector<Tensor>& in) { return flatten(in[0]); }, {param({2, 3, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return flatten(in[0], -2); }, {param({2, 3, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return flatten(in[0], 0, 1); }, {param({2, 3, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return flatten(in[0]); }, {param({})}));

  CHECK_THROWS_WITH_AS(flatten(x, 2, 1), doctest::Contains("flatten: start axis 2 comes after end axis 1 for a tensor of shape [2,3,4,5]"), Error);
  CHECK_THROWS_WITH_AS(flatten(x, 4), doctest::Contains("flatten: axis 4 is out of range for a tensor of rank 4"), Error);
  CHECK_THROWS_WITH_AS(flatten(x, 0, -5), doctest::Contains("axis -5 is out of range"), Error);
}

// --- unsqueeze, squeeze, contiguous --------------------------------------------------------------

TEST_CASE("unsqueeze inserts a unit axis anywhere in [-rank-1, rank]") {
  Tensor x = iota({2, 3});
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 3});
  CHECK(unsqueeze(x, 1).shape() == Shape{2, 1, 3});
  CHECK(unsqueeze(x, 2).shape() == Shape{2, 3, 1});
  CHECK(unsqueeze(x, -1).shape() == Shape{2, 3, 1});
  CHECK(unsqueeze(x, -3).shape() == Shape{1, 2, 3});
  CHECK(unsqueeze(scalar_tensor(1.f), -1).shape() == Shape{1});
  CHECK(values(unsqueeze(x, 1)) == values(x));

  for (std::int64_t axis : {0, 1, 2, -1, -2, -3}) {
    CAPTURE(axis);
    CHECK(gradcheck([axis](const std::vector<Tensor>& in) { return unsqueeze(in[0], axis); }, {param({2, 3})}));
  }
  CHECK_THROWS_WITH_AS(unsqueeze(x, 3), doctest::Contains("unsqueeze: axis 3 is out of range for a tensor of rank 3 (expected -3 to 2)"), Error);
  CHECK_THROWS_WITH_AS(unsqueeze(x, -4), doctest::Contains("unsqueeze: axis -4 is out of range"), Error);
}

TEST_CASE("squeeze removes unit axes; a non-unit axis leaves x unchanged") {
  Tensor x = iota({1, 3, 1, 2});
  CHECK(squeeze(x).shape() == Shape{3, 2});
  CHECK(squeeze(x, 0).shape() == Shape{3, 1, 2});
  CHECK(squeeze(x, 2).shape() == Shape{1, 3, 2});
  CHECK(squeeze(x, -2).shape() == Shape{1, 3, 2});
  CHECK(squeeze(x, 1).impl() == x.impl());
  CHECK(squeeze(x, -1).impl() == x.impl());
  Tensor y = iota({2, 3});
  CHECK(squeeze(y).impl() == y.impl());
  CHECK(squeeze(iota({1, 1})).shape() == Shape{});
  Tensor s = scalar_tensor(4.f);
  CHECK(squeeze(s, 0).impl() == s.impl());
  CHECK(squeeze(s, -1).impl() == s.impl());
  CHECK(values(squeeze(x)) == values(x));

  CHECK(gradcheck([](const std::vector<Tensor>& in) { return squeeze(in[0]); }, {param({1, 3, 1, 2})}));
  for (std::int64_t axis : {0, 2, -2, -4}) {
    CAPTURE(axis);
    CHECK(gradcheck([axis](const std::vector<Tensor>& in) { return squeeze(in[0], axis); }, {param({1, 3, 1, 2})}));
  }
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return squeeze(in[0], 1) * in[0]; }, {param({1, 3, 1, 2})}));

  CHECK_THROWS_WITH_AS(squeeze(x, 4), doctest::Contains("squeeze: axis 4 is out of range for a tensor of rank 4"), Error);
  CHECK_THROWS_WITH_AS(squeeze(s, 1), doctest::Contains("squeeze: axis 1 is out of range"), Error);
}

TEST_CASE("contiguous is the identity") {
  Tensor x = param({2, 3});
  CHECK(contiguous(x).impl() == x.impl());
  CHECK_THROWS_WITH_AS(contiguous(Tensor()), doctest::Contains("contiguous: the input tensor is undefined"), Error);
}

// --- transpose, permute --------------------------------------------------------------------------

TEST_CASE("transpose swaps two axes") {
  Tensor x = iota({2, 3});
  Tensor t = transpose(x, 0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(values(t) == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor y = iota({2, 3, 4});
  CHECK(values(transpose(y, 0, 2)) == naive_permute(y, {2, 1, 0}));
  CHECK(values(transpose(y, -1, -2)) == naive_permute(y, {0, 2, 1}));
  CHECK(values(transpose(y, 1, 0)) == naive_permute(y, {1, 0, 2}));
  CHECK(transpose(y, 1, -2).impl() == y.impl());
  Tensor s = scalar_tensor(1.f);
  CHECK(transpose(s, 0, -1).impl() == s.impl());

  CHECK(gradcheck([](const std::vector<Tensor>& in) { return transpose(in[0], 0, 1); }, {param({2, 3})}));
  const std::vector<std::pair<std::int64_t, std::int64_t>> pairs = {{0, 1}, {0, 2}, {1, 2}, {-1, -2}, {-3, -1}, {2, 0}};
  for (const auto& pair : pairs) {
    const std::int64_t a = pair.first, b = pair.second;  // (a structured binding cannot be captured in C++17)
    CAPTURE(a);
    CAPTURE(b);
    CHECK(gradcheck([a = a, b = b](const std::vector<Tensor>& in) { return transpose(in[0], a, b); }, {param({2, 3, 4})}));
  }

  CHECK_THROWS_WITH_AS(transpose(y, 0, 3), doctest::Contains("transpose: axis 3 is out of range for a tensor of rank 3"), Error);
  CHECK_THROWS_WITH_AS(transpose(y, -4, 0), doctest::Contains("transpose: axis -4 is out of range"), Error);
}

TEST_CASE("permute: output axis i is input axis dims[i]") {
  Tensor x = iota({2, 3, 4});
  Tensor p = permute(x, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(values(p) == naive_permute(x, {2, 0, 1}));
  CHECK(p.value()(3, 1, 2) == x.value()(1, 2, 3));
  CHECK(values(permute(x, {-1, -3, -2})) == values(p));
  CHECK(permute(x, {0, 1, 2}).impl() == x.impl());
  Tensor y = iota({2, 3, 4, 5});
  CHECK(values(permute(y, {0, 2, 1, 3})) == naive_permute(y, {0, 2, 1, 3}));
  CHECK(values(permute(y, {3, 1, 2, 0})) == naive_permute(y, {3, 1, 2, 0}));

  const std::vector<std::vector<std::int64_t>> perms = {{2, 0, 1}, {1, 2, 0}, {0, 2, 1}, {2, 1, 0}, {-1, 0, -2}};
  for (const auto& dims : perms) {
    CAPTURE(dims);
    CHECK(gradcheck([dims](const std::vector<Tensor>& in) { return permute(in[0], dims); }, {param({2, 3, 4})}));
  }
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return permute(in[0], {0, 2, 1, 3}); }, {param({2, 3, 2, 2})}));

  CHECK_THROWS_WITH_AS(permute(x, {0, 1}), doctest::Contains("permute: dims [0,1] has 2 entries for a tensor of shape [2,3,4] (rank 3)"), Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, 1, 1}), doctest::Contains("permute: dims [0,1,1] names axis 1 twice"), Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, -2, 1}), doctest::Contains("names axis 1 twice"), Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, 1, 3}), doctest::Contains("permute: axis 3 is out of range for a tensor of rank 3"), Error);
}

TEST_CASE("large transposes and permutes (tiled and parallel kernels) match the element-wise reference") {
  // Odd sizes leave partial tiles; the 4-D cases exceed the parallel threshold.
  Tensor a = randn({3, 70, 45});
  CHECK(values(transpose(a, 1, 2)) == naive_permute(a, {0, 2, 1}));
  CHECK(values(transpose(a, 0, 2)) == naive_permute(a, {2, 1, 0}));
  Tensor b = randn({4, 8, 33, 65});
  CHECK(values(transpose(b, -1, -2)) == naive_permute(b, {0, 1, 3, 2}));
  CHECK(values(permute(b, {0, 2, 1, 3})) == naive_permute(b, {0, 2, 1, 3}));
  CHECK(values(permute(b, {3, 0, 2, 1})) == naive_permute(b, {3, 0, 2, 1}));
  Tensor c = randn({300, 257});
  CHECK(values(transpose(c, 0, 1)) == naive_permute(c, {1, 0}));

  // The backward is the inverse permutation: d/dx sum(g * permute(x)) = permute^-1(g).
  Tensor x = randn({4, 8, 33, 65}).set_requires_grad(true);
  Tensor y = permute(x, {3, 0, 2, 1});
  Tensor g = randn(y.shape());
  y.backward(g);
  CHECK(values(permute(g, {1, 3, 2, 0})) == values(x.grad()));
  CHECK(values(x.grad()) == naive_permute(g, {1, 3, 2, 0}));
}

// --- slice, narrow -------------------------------------------------------------------------------

TEST_CASE("slice follows Python: negative bounds from the end, clamping, positive steps") {
  Tensor x = iota({10});
  CHECK(values(slice(x, 0, 2, 5)) == std::vector<float>{2, 3, 4});
  CHECK(values(slice(x, 0, -3, 100)) == std::vector<float>{7, 8, 9});
  CHECK(values(slice(x, 0, -100, 3)) == std::vector<float>{0, 1, 2});
  CHECK(values(slice(x, 0, 1, 8, 3)) == std::vector<float>{1, 4, 7});
  CHECK(values(slice(x, 0, 1, 9, 3)) == std::vector<float>{1, 4, 7});
  CHECK(values(slice(x, 0, 0, 10, 4)) == std::vector<float>{0, 4, 8});
  CHECK(values(slice(x, 0, -4, -1)) == std::vector<float>{6, 7, 8});
  CHECK(values(slice(x, 0, 3, INT64_MAX, INT64_MAX)) == std::vector<float>{3});
  CHECK(slice(x, 0, 5, 2).shape() == Shape{0});
  CHECK(slice(x, 0, 12, 20).shape() == Shape{0});
  CHECK(slice(x, 0, 0, 10).impl() == x.impl());

  Tensor m = iota({3, 4});
  CHECK(values(slice(m, 1, 1, 3)) == std::vector<float>{1, 2, 5, 6, 9, 10});
  CHECK(values(slice(m, -1, 0, 4, 2)) == std::vector<float>{0, 2, 4, 6, 8, 10});
  CHECK(values(slice(m, 0, -1, 3)) == std::vector<float>{8, 9, 10, 11});
  CHECK(values(slice(m, -2, 0, 3, 2)) == std::vector<float>{0, 1, 2, 3, 8, 9, 10, 11});

  CHECK(gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 0, 1, 3); }, {param({4, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 1, -2, 100); }, {param({4, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], -1, 0, 5, 2); }, {param({3, 5})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], -3, 1, 4, 2); }, {param({5, 2, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 1, 0, 2); }, {param({2, 3, 4})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 2, 1, 4, 3); }, {param({2, 3, 5})}));
}

TEST_CASE("slice gradients of several slices of one tensor add up, zero elsewhere") {
  Tensor x = from_vector({1, 2, 3, 4, 5}, {5}).set_requires_grad(true);
  Tensor a = slice(x, 0, 0, 3);   // x0 x1 x2
  Tensor b = slice(x, 0, 1, 5, 2);  // x1 x3
  Tensor y = cat({a, b});
  y.backward(from_vector({1, 10, 100, 1000, 10000}, {5}));
  CHECK(values(x.grad()) == std::vector<float>{1, 1010, 100, 10000, 0});

  // The same pattern through gradcheck, with overlapping slices on a 2-D tensor.
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 1, 0, 3) * slice(in[0], 1, 1, 4); },
                  {param({2, 4})}));
}

TEST_CASE("slice rejects a non-positive step, a bad axis and 0-dim tensors") {
  Tensor x = iota({3, 4});
  CHECK_THROWS_WITH_AS(slice(x, 0, 0, 2, 0), doctest::Contains("slice: step must be positive, got 0 (axis 0 of shape [3,4])"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 1, 0, 2, -1), doctest::Contains("step must be positive, got -1"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 2, 0, 1), doctest::Contains("slice: axis 2 is out of range for a tensor of rank 2"), Error);
  CHECK_THROWS_WITH_AS(slice(scalar_tensor(1.f), 0, 0, 1), doctest::Contains("slice: expected a tensor of at least one dimension, got a 0-dim tensor"), Error);
}

TEST_CASE("narrow takes length elements from start; negative start counts from the end") {
  Tensor x = iota({10});
  CHECK(values(narrow(x, 0, 2, 3)) == std::vector<float>{2, 3, 4});
  CHECK(values(narrow(x, 0, -3, 2)) == std::vector<float>{7, 8});
  CHECK(narrow(x, 0, 10, 0).shape() == Shape{0});
  Tensor m = iota({2, 3});
  CHECK(values(narrow(m, 1, 1, 2)) == std::vector<float>{1, 2, 4, 5});
  CHECK(values(narrow(m, -1, 0, 1)) == std::vector<float>{0, 3});

  CHECK(gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 0, 1, 2); }, {param({4, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], 1, -2, 2); }, {param({4, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return narrow(in[0], -1, 0, 2); }, {param({2, 2, 3})}));

  CHECK_THROWS_WITH_AS(narrow(x, 0, 8, 3), doctest::Contains("narrow: start 8 + length 3 exceeds the size 10 of axis 0 of shape [10]"), Error);
  CHECK_THROWS_WITH_AS(narrow(x, 0, 2, -1), doctest::Contains("length -1 exceeds"), Error);
  CHECK_THROWS_WITH_AS(narrow(x, 0, 11, 0), doctest::Contains("narrow: start 11 is out of range for axis 0 of shape [10] (expected -10 to 10)"), Error);
  CHECK_THROWS_WITH_AS(narrow(x, 0, -11, 1), doctest::Contains("start -11 is out of range"), Error);
  CHECK_THROWS_WITH_AS(narrow(m, 2, 0, 1), doctest::Contains("narrow: axis 2 is out of range"), Error);
  CHECK_THROWS_WITH_AS(narrow(scalar_tensor(1.f), 0, 0, 1), doctest::Contains("narrow: expected a tensor of at least one dimension"), Error);
}

// --- cat, split, chunk ---------------------------------------------------------------------------

TEST_CASE("cat concatenates along any axis") {
  Tensor a = iota({2, 2});
  Tensor b = from_vector({10, 11}, {2, 1});
  CHECK(values(cat({a, b}, 1)) == std::vector<float>{0, 1, 10, 2, 3, 11});
  CHECK(values(cat({a, b}, -1)) == std::vector<float>{0, 1, 10, 2, 3, 11});
  CHECK(values(cat({a, from_vector({7, 8}, {1, 2})})) == std::vector<float>{0, 1, 2, 3, 7, 8});
  CHECK(cat({a, iota({0, 2}), a}).shape() == Shape{4, 2});
  CHECK(values(cat({a})) == values(a));

  CHECK(gradcheck([](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[2]}, 0); },
                  {param({1, 3}), param({2, 3}), param({3, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, 1); }, {param({2, 1, 2}), param({2, 3, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, -1); }, {param({2, 3}), param({2, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[0]}, -3); }, {param({1, 2, 2}), param({2, 2, 2})}));
  // An input that needs no gradient gets none; the others still do.
  Tensor constant = randn({2, 3});
  CHECK(gradcheck([constant](const std::vector<Tensor>& in) { return cat({constant, in[0]}, 1); }, {param({2, 2})}));
}

TEST_CASE("cat rejects an empty list, 0-dim tensors and mismatching shapes") {
  CHECK_THROWS_WITH_AS(cat({}), doctest::Contains("cat: expected a non-empty list of tensors"), Error);
  CHECK_THROWS_WITH_AS(cat({iota({2}), scalar_tensor(1.f)}), doctest::Contains("cat: tensor 1 is 0-dim (shape [])"), Error);
  CHECK_THROWS_WITH_AS(cat({iota({2, 3}), iota({2, 4})}, 0), doctest::Contains("cat: tensor 1 has shape [2,4] and tensor 0 has shape [2,3]; expected the same rank and the same sizes in every axis but axis 0"), Error);
  CHECK_THROWS_WITH_AS(cat({iota({2, 3}), iota({2, 3, 1})}, 1), doctest::Contains("tensor 1 has shape [2,3,1]"), Error);
  CHECK_THROWS_WITH_AS(cat({iota({2, 3}), iota({2, 3})}, 2), doctest::Contains("cat: axis 2 is out of range for a tensor of rank 2"), Error);
  CHECK_THROWS_WITH_AS(cat({iota({2}), Tensor()}), doctest::Contains("cat: tensor 1 is undefined"), Error);
}

TEST_CASE("split by size and by sizes; each piece's gradient adds into the input") {
  Tensor x = iota({5, 2});
  std::vector<Tensor> pieces = split(x, 2);
  REQUIRE(pieces.size() == 3);
  CHECK(pieces[0].shape() == Shape{2, 2});
  CHECK(pieces[2].shape() == Shape{1, 2});
  CHECK(values(pieces[2]) == std::vector<float>{8, 9});
  CHECK(split(x, 5).size() == 1);
  CHECK(split(x, 7).size() == 1);
  std::vector<Tensor> columns = split(x, 1, -1);
  REQUIRE(columns.size() == 2);
  CHECK(values(columns[1]) == std::vector<float>{1, 3, 5, 7, 9});
  CHECK(split(iota({0, 2}), 0).size() == 1);
  CHECK(split(iota({0, 2}), 3).size() == 1);

  std::vector<Tensor> parts = split(x, {1, 0, 4});
  REQUIRE(parts.size() == 3);
  CHECK(parts[1].shape() == Shape{0, 2});
  CHECK(values(parts[2]) == std::vector<float>{2, 3, 4, 5, 6, 7, 8, 9});

  // Pieces used differently, then put back together: every piece's gradient lands in place.
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    std::vector<Tensor> p = split(in[0], 2);
    return cat({tanh(p[0]), p[1] * p[1], p[2]});
  }, {param({5, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    std::vector<Tensor> p = split(in[0], 2, -1);
    return p[0] * p[1];  // the last piece is unused: its gradient is zero
  }, {param({3, 5})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    std::vector<Tensor> p = split(in[0], {2, 1, 2}, 1);
    return cat({p[2], exp(p[0]), p[1]}, 1);
  }, {param({2, 5})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    std::vector<Tensor> p = split(in[0], {1, 2}, -2);
    return p[0] * p[1];
  }, {param({2, 3, 2})}));

  CHECK_THROWS_WITH_AS(split(x, 0), doctest::Contains("split: split_size 0 is invalid for axis 0 of shape [5,2]"), Error);
  CHECK_THROWS_WITH_AS(split(x, -1), doctest::Contains("split_size -1 is invalid"), Error);
  CHECK_THROWS_WITH_AS(split(x, {3, 3}), doctest::Contains("split: sizes [3,3] add up to 6, expected the size 5 of axis 0 of shape [5,2]"), Error);
  CHECK_THROWS_WITH_AS(split(x, {6, -1}), doctest::Contains("split: sizes [6,-1] has the negative size -1"), Error);
  CHECK_THROWS_WITH_AS(split(x, {INT64_MAX, INT64_MAX}), doctest::Contains("add up to"), Error);
  CHECK_THROWS_WITH_AS(split(x, 1, 2), doctest::Contains("split: axis 2 is out of range"), Error);
  CHECK_THROWS_WITH_AS(split(scalar_tensor(1.f), 1), doctest::Contains("split: expected a tensor of at least one dimension"), Error);
}

TEST_CASE("chunk: pieces of ceil(n / chunks), possibly fewer than chunks") {
  auto sizes = [](const std::vector<Tensor>& pieces, std::size_t axis) {
    std::vector<std::size_t> s;
    for (const Tensor& p : pieces) s.push_back(p.shape()[axis]);
    return s;
  };
  CHECK(sizes(chunk(iota({10}), 4), 0) == std::vector<std::size_t>{3, 3, 3, 1});
  CHECK(sizes(chunk(iota({10}), 6), 0) == std::vector<std::size_t>{2, 2, 2, 2, 2});
  CHECK(sizes(chunk(iota({10}), 20), 0) == std::vector<std::size_t>(10, 1));
  CHECK(sizes(chunk(iota({0}), 3), 0) == std::vector<std::size_t>{0, 0, 0});
  CHECK(sizes(chunk(iota({2, 7}), 2, -1), 1) == std::vector<std::size_t>{4, 3});
  CHECK(values(chunk(iota({2, 4}), 2, 1)[1]) == std::vector<float>{2, 3, 6, 7});

  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    std::vector<Tensor> c = chunk(in[0], 3, 1);
    return cat({c[0] * c[1], c[2]}, 1);
  }, {param({2, 6})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    std::vector<Tensor> c = chunk(in[0], 2);
    return c[0] * c[0] + c[1];
  }, {param({4, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    std::vector<Tensor> c = chunk(in[0], 3, -1);  // 3 pieces of 2, 2, 1
    return cat({c[2], c[0], c[1]}, -1);
  }, {param({2, 5})}));

  CHECK_THROWS_WITH_AS(chunk(iota({4}), 0), doctest::Contains("chunk: expected chunks > 0, got 0 (shape [4])"), Error);
  CHECK_THROWS_WITH_AS(chunk(iota({4}), 2, 1), doctest::Contains("chunk: axis 1 is out of range"), Error);
  CHECK_THROWS_WITH_AS(chunk(scalar_tensor(1.f), 2), doctest::Contains("chunk: expected a tensor of at least one dimension"), Error);
}

// --- expand, broadcast_to ------------------------------------------------------------------------

TEST_CASE("expand repeats unit axes and prepends new ones; -1 keeps a size") {
  Tensor x = from_vector({1, 2, 3}, {3, 1});
  Tensor y = expand(x, {2, 3, 2});
  CHECK(y.shape() == Shape{2, 3, 2});
  CHECK(values(y) == std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
  CHECK(values(expand(x, {-1, 2})) == std::vector<float>{1, 1, 2, 2, 3, 3});
  CHECK(expand(x, {3, 0}).shape() == Shape{3, 0});
  CHECK(expand(x, {-1, 1}).impl() == x.impl());
  CHECK(values(expand(scalar_tensor(5.f), {2})) == std::vector<float>{5, 5});
  CHECK(values(broadcast_to(from_vector({1, 2}, {2}), {2, 2})) == std::vector<float>{1, 2, 1, 2});

  CHECK(gradcheck([](const std::vector<Tensor>& in) { return expand(in[0], {2, 3, 2}); }, {param({3, 1})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return expand(in[0], {-1, 4}); }, {param({3, 1})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return expand(in[0], {2, -1, 3, -1}); }, {param({1, 1, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return expand(in[0], {3, 2}); }, {param({})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return broadcast_to(in[0], {2, 3}); }, {param({3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return broadcast_to(in[0], {4, 2, 3}); }, {param({2, 1})}));

  CHECK_THROWS_WITH_AS(expand(x, {3, 4, -1}), doctest::Contains("expand: cannot expand shape [3,1] to [3,4,-1]: the target size 4 must match the existing size 3 at non-singleton dimension 1"), Error);
  CHECK_THROWS_WITH_AS(expand(x, {2}), doctest::Contains("expand: cannot expand shape [3,1] to [2]: the target has fewer dimensions"), Error);
  CHECK_THROWS_WITH_AS(expand(x, {-1, 3, 1}), doctest::Contains("size -1 at dimension 0 (expected >= 0, as it is a new leading dimension)"), Error);
  CHECK_THROWS_WITH_AS(expand(x, {3, -2}), doctest::Contains("size -2 at dimension 1"), Error);
  CHECK_THROWS_WITH_AS(expand(x, {1ll << 40, 1ll << 40, 3, 1}), doctest::Contains("more elements than memory can address"), Error);
  CHECK_THROWS_WITH_AS(broadcast_to(x, {3, 2, 2}), doctest::Contains("broadcast_to: cannot expand shape [3,1] to [3,2,2]"), Error);
}

// --- composites ----------------------------------------------------------------------------------

TEST_CASE("ops applied after transpose, permute and slice get the right gradients") {
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return tanh(transpose(in[0], 0, 1)) * in[1]; },
                  {param({3, 2}), param({2, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return exp(permute(in[0], {2, 0, 1})) * in[1]; },
                  {param({2, 3, 2}), param({2, 1, 3})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return sigmoid(slice(in[0], 1, 0, 4, 2)) * in[1]; },
                  {param({3, 4}), param({3, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    Tensor t = transpose(reshape(in[0], {2, 3, 2}), -1, -2);  // (2, 2, 3)
    return narrow(t, 2, 1, 2) * unsqueeze(in[1], 0);
  }, {param({12}), param({2, 2})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    Tensor heads = permute(view(in[0], {2, 3, 2, 2}), {0, 2, 1, 3});  // (B, H, T, D)
    return flatten(transpose(heads, 1, 2), 2) * expand(in[1], {2, 3, 4});
  }, {param({2, 3, 4}), param({3, 1})}));
  CHECK(gradcheck([](const std::vector<Tensor>& in) {
    return squeeze(slice(transpose(in[0], 0, 2), 0, 1, 2)) * broadcast_to(in[1], {2, 3});
  }, {param({3, 2, 4}), param({3})}));
}

TEST_CASE("large slice backward and cat use the parallel kernels correctly") {
  Tensor x = randn({64, 48, 40}).set_requires_grad(true);
  Tensor a = slice(x, 1, 1, 48, 2);   // (64, 24, 40)
  Tensor b = narrow(x, 2, 5, 30);     // (64, 48, 30)
  Tensor ga = randn(a.shape()), gb = randn(b.shape());
  (cat({flatten(a), flatten(b)})).backward(cat({flatten(ga), flatten(gb)}));
  const Array& g = x.grad().value();
  const Array& gav = ga.value();
  const Array& gbv = gb.value();
  bool ok = true;
  for (std::size_t i = 0; i < 64; ++i) {
    for (std::size_t j = 0; j < 48; ++j) {
      for (std::size_t k = 0; k < 40; ++k) {
        float expected = 0.f;
        if (j % 2 == 1) expected += gav(i, j / 2, k);
        if (k >= 5 && k < 35) expected += gbv(i, j, k - 5);
        ok = ok && g(i, j, k) == expected;
      }
    }
  }
  CHECK(ok);

  Tensor p = randn({40, 300, 7}), q = randn({40, 200, 7});
  Tensor c = cat({p, q}, 1);
  CHECK(values(narrow(c, 1, 0, 300)) == values(p));
  CHECK(values(narrow(c, 1, 300, 200)) == values(q));
  CHECK(values(expand(unsqueeze(q, 0), {3, -1, -1, -1})) == values(cat({q, q, q})));
}

TEST_CASE("reshape and add pass their output gradient on: the caller's stays as it was, the graph's is not copied") {
  Tensor x = randn({2, 6}).set_requires_grad(true), b = randn({2, 6}).set_requires_grad(true);
  // A backward that starts at the reshape reads the caller's gradient: it is copied, not taken.
  Tensor g = randn({3, 4});
  const Array g_before = g.value();
  reshape(x, {3, 4}).backward(g);
  CHECK(g.value() == g_before);
  CHECK(x.grad().value() == Array(xt::reshape_view(g_before, {2, 6})));
  // Inside the graph: x + b's gradient reaches both inputs, then flows on through the reshapes.
  x.zero_grad();
  Tensor y = reshape(add(reshape(x, {12}), reshape(b, {12})), {4, 3});
  Tensor dy = randn({4, 3});
  y.backward(dy);
  CHECK(x.grad().value() == Array(xt::reshape_view(dy.value(), {2, 6})));
  CHECK(b.grad().value() == Array(xt::reshape_view(dy.value(), {2, 6})));
  const Array d2 = xt::reshape_view(dy.value(), {2, 6});
  x.zero_grad();
  reshape(add(x, x), {4, 3}).backward(dy);  // one tensor as both inputs: both parts arrive
  CHECK(x.grad().value() == Array(2.f * d2));
}
