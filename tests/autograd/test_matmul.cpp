// matmul: every torch.matmul shape pattern against a naive triple loop, gradients by gradcheck
// (also on transposed operands), both the threaded and the single-threaded batch loops, errors.
#include <doctest/doctest.h>

#include <xtensor/xmanipulation.hpp>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

/// The (rows, cols) matrix number `index` of a contiguous stack.
Array block(const Array& stack, std::size_t index, std::size_t rows, std::size_t cols) {
  Array out = Array::from_shape({rows, cols});
  std::copy_n(stack.data() + index * rows * cols, rows * cols, out.data());
  return out;
}

/// (n, k) x (k, m), summed in double.
Array naive_matmul(const Array& a, const Array& b) {
  const std::size_t n = a.shape()[0], k = a.shape()[1], m = b.shape()[1];
  Array c = Array::from_shape({n, m});
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < m; ++j) {
      double sum = 0;
      for (std::size_t l = 0; l < k; ++l) sum += static_cast<double>(a(i, l)) * b(l, j);
      c(i, j) = static_cast<float>(sum);
    }
  }
  return c;
}

bool close(const Array& actual, const Array& expected) {
  return actual.shape() == expected.shape() && xt::allclose(actual, expected, 1e-4, 1e-4);
}

bool same_shape(const Tensor& x, const Shape& shape) { return x.shape() == shape; }

GradcheckFn matmul_of_inputs() {
  return [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
}

/// Runs `body` with `threads` threads, then restores the previous count.
template <class Body>
void with_threads(int threads, Body body) {
  const int previous = get_num_threads();
  set_num_threads(threads);
  body();
  set_num_threads(previous);
}

}  // namespace

TEST_CASE("2-D x 2-D: a hand-computed product, then the naive loop on random values") {
  Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector({7, 8, 9, 10, 11, 12}, {3, 2});
  Tensor c = matmul(a, b);
  CHECK(close(c.value(), Array{{58, 64}, {139, 154}}));

  Tensor x = randn({5, 7}), y = randn({7, 3});
  CHECK(close(matmul(x, y).value(), naive_matmul(x.value(), y.value())));
  CHECK(gradcheck(matmul_of_inputs(), {randn({5, 7}).set_requires_grad(), randn({7, 3}).set_requires_grad()}));
}

TEST_CASE("1-D x 1-D is a dot product with a 0-d result") {
  Tensor a = from_vector({1, 2, 3}, {3});
  Tensor b = from_vector({4, -5, 6}, {3});
  Tensor c = matmul(a, b);
  CHECK(same_shape(c, {}));
  CHECK(c.item() == doctest::Approx(12.f));
  CHECK(gradcheck(matmul_of_inputs(), {randn({6}).set_requires_grad(), randn({6}).set_requires_grad()}));
}

TEST_CASE("1-D x 2-D treats the vector as a row and drops its axis") {
  Tensor v = randn({4}), b = randn({4, 5});
  Tensor c = matmul(v, b);
  CHECK(same_shape(c, {5}));
  Array expected = naive_matmul(block(v.value(), 0, 1, 4), b.value());
  expected.reshape({5});
  CHECK(close(c.value(), expected));
  CHECK(gradcheck(matmul_of_inputs(), {randn({4}).set_requires_grad(), randn({4, 5}).set_requires_grad()}));
}

TEST_CASE("2-D x 1-D treats the vector as a column and drops its axis") {
  Tensor a = randn({3, 4}), v = randn({4});
  Tensor c = matmul(a, v);
  CHECK(same_shape(c, {3}));
  Array expected = naive_matmul(a.value(), block(v.value(), 0, 4, 1));
  expected.reshape({3});
  CHECK(close(c.value(), expected));
  CHECK(gradcheck(matmul_of_inputs(), {randn({3, 4}).set_requires_grad(), randn({4}).set_requires_grad()}));
}

TEST_CASE("1-D x N-D and N-D x 1-D broadcast the vector over the batch") {
  Tensor v = randn({4}), stack = randn({2, 4, 5});
  Tensor c = matmul(v, stack);  // (2, 5)
  CHECK(same_shape(c, {2, 5}));
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(close(block(c.value(), i, 1, 5), naive_matmul(block(v.value(), 0, 1, 4), block(stack.value(), i, 4, 5))));
  }
  Tensor rows = randn({2, 3, 4});
  Tensor d = matmul(rows, v);  // (2, 3)
  CHECK(same_shape(d, {2, 3}));
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(close(block(d.value(), i, 3, 1), naive_matmul(block(rows.value(), i, 3, 4), block(v.value(), 0, 4, 1))));
  }
  CHECK(gradcheck(matmul_of_inputs(), {randn({4}).set_requires_grad(), randn({2, 4, 5}).set_requires_grad()}));
  CHECK(gradcheck(matmul_of_inputs(), {randn({2, 3, 4}).set_requires_grad(), randn({4}).set_requires_grad()}));
}

TEST_CASE("batched N-D x N-D multiplies matrix by matrix, threaded and single-threaded") {
  Tensor a = randn({2, 3, 4, 5}), b = randn({2, 3, 5, 6});
  for (int threads : {1, 2}) {
    with_threads(threads, [&] {
      Tensor c = matmul(a, b);
      CHECK(same_shape(c, {2, 3, 4, 6}));
      for (std::size_t p = 0; p < 6; ++p) {
        CHECK(close(block(c.value(), p, 4, 6), naive_matmul(block(a.value(), p, 4, 5), block(b.value(), p, 5, 6))));
      }
      CHECK(gradcheck(matmul_of_inputs(),
                      {randn({2, 3, 4, 5}).set_requires_grad(), randn({2, 3, 5, 6}).set_requires_grad()}));
    });
  }
}

TEST_CASE("broadcast batch axes: [2,1,4,5] x [3,5,6] -> [2,3,4,6], gradients summed over the broadcast") {
  Tensor a = randn({2, 1, 4, 5}), b = randn({3, 5, 6});
  for (int threads : {1, 2}) {
    with_threads(threads, [&] {
      Tensor c = matmul(a, b);
      CHECK(same_shape(c, {2, 3, 4, 6}));
      for (std::size_t i = 0; i < 2; ++i) {
        for (std::size_t j = 0; j < 3; ++j) {
          CHECK(close(block(c.value(), i * 3 + j, 4, 6),
                      naive_matmul(block(a.value(), i, 4, 5), block(b.value(), j, 5, 6))));
        }
      }
      CHECK(gradcheck(matmul_of_inputs(),
                      {randn({2, 1, 4, 5}).set_requires_grad(), randn({3, 5, 6}).set_requires_grad()}));
    });
  }
}

TEST_CASE("broadcast batch axes of equal rank: [2,1,4,5] x [2,3,5,6] -> [2,3,4,6]") {
  Tensor a = randn({2, 1, 4, 5}), b = randn({2, 3, 5, 6});
  Tensor c = matmul(a, b);
  CHECK(same_shape(c, {2, 3, 4, 6}));
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      CHECK(close(block(c.value(), i * 3 + j, 4, 6),
                  naive_matmul(block(a.value(), i, 4, 5), block(b.value(), i * 3 + j, 5, 6))));
    }
  }
  CHECK(gradcheck(matmul_of_inputs(),
                  {randn({2, 1, 4, 5}).set_requires_grad(), randn({2, 3, 5, 6}).set_requires_grad()}));
  CHECK(gradcheck(matmul_of_inputs(),
                  {randn({2, 3, 4, 5}).set_requires_grad(), randn({1, 3, 5, 6}).set_requires_grad()}));
}

TEST_CASE("a 2-D left operand is shared by every matrix of a batched right operand") {
  Tensor a = randn({3, 4}), b = randn({2, 4, 5});
  Tensor c = matmul(a, b);
  CHECK(same_shape(c, {2, 3, 5}));
  for (std::size_t p = 0; p < 2; ++p) {
    CHECK(close(block(c.value(), p, 3, 5), naive_matmul(a.value(), block(b.value(), p, 4, 5))));
  }
  CHECK(gradcheck(matmul_of_inputs(), {randn({3, 4}).set_requires_grad(), randn({2, 4, 5}).set_requires_grad()}));
  CHECK(gradcheck(matmul_of_inputs(), {randn({1, 3, 4}).set_requires_grad(), randn({2, 4, 5}).set_requires_grad()}));
}

TEST_CASE("a batched left operand times one matrix folds into one GEMM: [B,T,K] x [K,N]") {
  Tensor a = randn({2, 3, 4, 5}), b = randn({5, 6});
  Tensor c = matmul(a, b);
  CHECK(same_shape(c, {2, 3, 4, 6}));
  for (std::size_t p = 0; p < 6; ++p) {
    CHECK(close(block(c.value(), p, 4, 6), naive_matmul(block(a.value(), p, 4, 5), b.value())));
  }
  // B with batch axes of size 1 is still a single matrix.
  Array b_stacked = b.value();
  b_stacked.reshape({1, 5, 6});
  Tensor d = matmul(a, Tensor(b_stacked));
  CHECK(same_shape(d, {2, 3, 4, 6}));
  CHECK(close(d.value(), c.value()));
  CHECK(gradcheck(matmul_of_inputs(), {randn({3, 4, 5}).set_requires_grad(), randn({5, 6}).set_requires_grad()}));
  CHECK(gradcheck(matmul_of_inputs(), {randn({3, 4, 5}).set_requires_grad(), randn({1, 5, 6}).set_requires_grad()}));
}

TEST_CASE("operands that went through a transpose") {
  auto f = [](const std::vector<Tensor>& in) { return matmul(transpose(in[0], -1, -2), transpose(in[1], -2, -1)); };
  Tensor a = randn({5, 4}), b = randn({6, 5});
  Tensor c = f({a, b});  // (4, 5) x (5, 6)
  CHECK(close(c.value(), naive_matmul(Array(xt::transpose(a.value())), Array(xt::transpose(b.value())))));
  CHECK(gradcheck(f, {randn({5, 4}).set_requires_grad(), randn({6, 5}).set_requires_grad()}));
  CHECK(gradcheck(f, {randn({2, 5, 4}).set_requires_grad(), randn({2, 6, 5}).set_requires_grad()}));
  CHECK(gradcheck(f, {randn({2, 1, 5, 4}).set_requires_grad(), randn({3, 6, 5}).set_requires_grad()}));
  CHECK(gradcheck(f, {randn({3, 5, 4}).set_requires_grad(), randn({6, 5}).set_requires_grad()}));
  // A batch made by moving the batch axis to the front (as heads are split out of (B, T, H, D)).
  auto g = [](const std::vector<Tensor>& in) { return matmul(permute(in[0], {1, 0, 2}), in[1]); };
  CHECK(gradcheck(g, {randn({4, 2, 5}).set_requires_grad(), randn({2, 5, 3}).set_requires_grad()}));
}

TEST_CASE("one tensor on both sides gets both gradients, added to gradients already there") {
  auto f = [](const std::vector<Tensor>& in) { return matmul(in[0], in[0]) + in[0] * 2.f; };
  CHECK(gradcheck(f, {randn({4, 4}).set_requires_grad()}));
  CHECK(gradcheck(f, {randn({3, 4, 4}).set_requires_grad()}));
}

TEST_CASE("only the inputs that require grad get a gradient") {
  Tensor a = randn({3, 4}).set_requires_grad(), b = randn({4, 5});
  matmul(a, b).backward(ones({3, 5}));
  CHECK(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  // d(sum C)/dA = 1 B^T: every row of dA holds B's row sums.
  Array row_sums = xt::sum(b.value(), {1});  // (4)
  row_sums.reshape({1, 4});
  for (std::size_t i = 0; i < 3; ++i) CHECK(close(block(a.grad().value(), i, 1, 4), row_sums));
}

TEST_CASE("large batched matrices take the GEMM library's threads; gradients match the naive loop") {
  const std::size_t n = 130;  // over the size below which the batch is shared out over threads
  Tensor a = randn({2, n, n}).set_requires_grad(), b = randn({2, n, n}).set_requires_grad();
  Tensor c = matmul(a, b);
  Tensor g = randn({2, n, n});
  c.backward(g);
  for (std::size_t p = 0; p < 2; ++p) {
    const Array ap = block(a.value(), p, n, n), bp = block(b.value(), p, n, n), gp = block(g.value(), p, n, n);
    CHECK(close(block(c.value(), p, n, n), naive_matmul(ap, bp)));
    CHECK(close(block(a.grad().value(), p, n, n), naive_matmul(gp, Array(xt::transpose(bp)))));
    CHECK(close(block(b.grad().value(), p, n, n), naive_matmul(Array(xt::transpose(ap)), gp)));
  }
}

TEST_CASE("zero-sized operands give zero-sized or zero results and zero gradients") {
  Tensor a = randn({3, 0}).set_requires_grad(), b = randn({0, 5}).set_requires_grad();
  Tensor c = matmul(a, b);
  CHECK(same_shape(c, {3, 5}));
  CHECK(xt::all(xt::equal(c.value(), 0.f)));
  c.backward(ones({3, 5}));
  CHECK(same_shape(a.grad(), {3, 0}));
  CHECK(same_shape(b.grad(), {0, 5}));
  CHECK(same_shape(matmul(randn({0, 4}), randn({4, 5})), {0, 5}));
  CHECK(same_shape(matmul(randn({2, 0, 3, 4}), randn({4, 5})), {2, 0, 3, 5}));
}

TEST_CASE("bad shapes name both operands") {
  CHECK_THROWS_WITH_AS(matmul(zeros({32, 64}), zeros({32, 16})),
                       "matmul: cannot multiply [32,64] by [32,16]: inner dimensions 64 and 32 differ", Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({3}), zeros({4})),
                       "matmul: cannot multiply [3] by [4]: inner dimensions 3 and 4 differ", Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3, 4}), zeros({5})),
                       "matmul: cannot multiply [2,3,4] by [5]: inner dimensions 4 and 5 differ", Error);
  CHECK_THROWS_WITH_AS(matmul(scalar_tensor(2.f), zeros({3})),
                       "matmul: both operands must have at least 1 dimension, got shapes [] and [3]", Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({3, 3}), scalar_tensor(2.f)),
                       "matmul: both operands must have at least 1 dimension, got shapes [3,3] and []", Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3, 4, 5}), zeros({4, 5, 6})),
                       doctest::Contains("matmul: cannot multiply [2,3,4,5] by [4,5,6]: batch dimensions [2,3] and "
                                         "[4] do not broadcast"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor(), zeros({3})), doctest::Contains("matmul: an input tensor is undefined"), Error);
}
