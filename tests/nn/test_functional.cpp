// nn::functional: linear and scaled dot-product attention against naive loops, gradchecks,
// masks (causal, padding, fully masked rows), dropout on the weights, bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include <xgrad/kernels/linear.hpp>
#include <xgrad/xgrad.hpp>
#include <xgrad/nn/functional.hpp>

#include <xtensor/xview.hpp>

using namespace xgrad;
namespace F = xgrad::nn::functional;

namespace {
using Inputs = const std::vector<Tensor>&;

Tensor param(const Shape& shape, std::uint64_t seed) {
  Generator g(seed);
  return uniform(shape, -1.f, 1.f, g).set_requires_grad(true);
}

/// Attention for one (b, h) written out with plain loops in double: the reference.
Array naive_attention(const Array& q, const Array& k, const Array& v, std::size_t H, const Array* mask,
                      const Mask* padding) {
  const std::size_t B = q.shape()[0], T = q.shape()[1], S = k.shape()[1];
  const std::size_t dk = q.shape()[2] / H, dv = v.shape()[2] / H;
  Array out = Array::from_shape({B, T, H * dv});
  out.fill(0.f);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t t = 0; t < T; ++t) {
        std::vector<double> score(S);
        double max = -INFINITY;
        for (std::size_t s = 0; s < S; ++s) {
          double dot = 0;
          for (std::size_t i = 0; i < dk; ++i) dot += double(q(b, t, h * dk + i)) * k(b, s, h * dk + i);
          score[s] = dot / std::sqrt(double(dk)) + (mask ? (*mask)(t, s) : 0.f);
          if (padding && (*padding)(b, s)) score[s] = -INFINITY;
          max = std::max(max, score[s]);
        }
        if (max == -INFINITY) continue;
        double total = 0;
        for (double& s : score) total += (s = std::exp(s - max));
        for (std::size_t i = 0; i < dv; ++i) {
          double acc = 0;
          for (std::size_t s = 0; s < S; ++s) acc += score[s] / total * v(b, s, h * dv + i);
          out(b, t, h * dv + i) = float(acc);
        }
      }
  return out;
}
}  // namespace

TEST_CASE("linear: values, gradcheck with and without bias, any leading axes") {
  Tensor x = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = from_vector({1, 0, -1, 2, 1, 0}, {2, 3});
  Tensor b = from_vector({0.5f, -1}, {2});
  CHECK(F::linear(x, w, b).value() == Array{{-1.5f, 3.f}, {-1.5f, 12.f}});
  CHECK(F::linear(x, w).value() == Array{{-2.f, 4.f}, {-2.f, 13.f}});
  Tensor x3 = param({2, 3, 4}, 1), w3 = param({5, 4}, 2), b3 = param({5}, 3);
  CHECK(F::linear(x3, w3, b3).shape() == Shape{2, 3, 5});
  CHECK(gradcheck([](Inputs in) { return F::linear(in[0], in[1], in[2]); }, {x3, w3, b3}));
  CHECK(gradcheck([](Inputs in) { return F::linear(in[0], in[1]); }, {x3, w3}));
}

TEST_CASE("linear: up to kSkinnyRows rows (one pass over W), as the same rows among more (one GEMM)") {
  // Output counts that are and are not a multiple of W's block of rows, widths that are not a
  // vector's multiple, and enough outputs to be shared between threads.
  static_assert(xgrad::kernels::kSkinnyRows < 12, "the 12 rows below must go through the GEMM");
  for (const auto& [out, in] : {std::pair<std::size_t, std::size_t>{3, 4}, {130, 37}, {1001, 64}}) {
    Tensor many = param({12, in}, 10), w5 = param({out, in}, 11), b5 = param({out}, 12);
    const Array all = F::linear(many, w5, b5).value();  // (12, out): one GEMM
    const std::size_t outputs = out;  // (a structured binding cannot be captured in C++17)
    for (std::size_t rows = 1; rows <= xgrad::kernels::kSkinnyRows; ++rows) {
      CAPTURE(outputs);
      CAPTURE(rows);
      const Array few = F::linear(narrow(many, 0, 0, rows), w5, b5).value();  // (rows, out)
      // Another summation order than GEMM's: float rounding over in <= 64 products of |x| <= 1.
      CHECK(xt::allclose(few, xt::eval(xt::view(all, xt::range(0, rows), xt::all())), 1e-5, 2e-5));
      const Array no_bias = F::linear(narrow(many, 0, 0, rows), w5).value();
      CHECK(xt::allclose(no_bias, xt::eval(xt::view(all, xt::range(0, rows), xt::all()) - b5.value()), 1e-5, 1e-5));
    }
  }
  Tensor x = from_vector({4, 5, 6}, {1, 1, 3});
  Tensor w = from_vector({1, 0, -1, 2, 1, 0}, {2, 3});
  CHECK(F::linear(x, w, from_vector({0.5f, -1}, {2})).value() == Array{{{-1.5f, 12.f}}});
  CHECK(F::linear(x, w).value() == Array{{{-2.f, 13.f}}});
  CHECK(gradcheck([](Inputs in) { return F::linear(in[0], in[1], in[2]); }, {param({1, 4}, 4), param({5, 4}, 5), param({5}, 6)}));
}

TEST_CASE("linear under a PackedWeightsGuard: the same values from packed weights, packed again when W changes") {
  static_assert(F::kPackedMinRows <= 2 && F::kPackedRows >= 40, "the row counts below must be packed");
  for (const auto& [out, in] : {std::pair<std::size_t, std::size_t>{3, 4}, {130, 37}, {1001, 64}}) {
    const std::size_t outputs = out;  // (a structured binding cannot be captured in C++17)
    Tensor x = param({40, in}, 20), w = param({out, in}, 21), b = param({out}, 22);
    for (const std::size_t rows : {2, 4, 9, 13, 40}) {
      CAPTURE(outputs);
      CAPTURE(rows);
      const Tensor xr = narrow(x, 0, 0, rows);
      const Array plain = F::linear(xr, w, b).value();
      const Array plain_relu = F::linear(xr, w, b, F::Activation::relu).value();
      const Array plain_rows = F::linear_rows(xr, w, b, 1, out - 1).value();
      F::PackedWeightsGuard packed;
      // Another summation order than GEMM's: float rounding over in <= 64 products of |x| <= 1.
      CHECK(xt::allclose(F::linear(xr, w, b).value(), plain, 1e-5, 2e-5));
      CHECK(xt::allclose(F::linear(xr, w, b, F::Activation::relu).value(), plain_relu, 1e-5, 2e-5));
      CHECK(xt::allclose(F::linear_rows(xr, w, b, 1, out - 1).value(), plain_rows, 1e-5, 2e-5));
      CHECK(xt::allclose(F::linear(xr, w).value(), plain - b.value(), 1e-5, 2e-5));
      {
        F::PackedWeightsGuard nested;  // the inner guard's end keeps the outer's copies
      }
      CHECK(xt::allclose(F::linear(xr, w, b).value(), plain, 1e-5, 2e-5));
    }
    // W changed in place while the guard lives: the product follows it, as without the guard.
    F::PackedWeightsGuard packed;
    const Tensor x13 = narrow(x, 0, 0, 13);
    CHECK(F::linear(x13, w, b).value().shape()[1] == out);
    {
      NoGradGuard no_grad;
      w.mutable_value() *= -2.f;
    }
    const Array changed = F::linear(x13, w, b).value();
    Array expected = xt::zeros<float>({std::size_t{13}, out});
    for (std::size_t r = 0; r < 13; ++r) {
      for (std::size_t o = 0; o < out; ++o) {
        double sum = b.value()(o);
        for (std::size_t k = 0; k < in; ++k) sum += double(x13.value()(r, k)) * double(w.value()(o, k));
        expected(r, o) = static_cast<float>(sum);
      }
    }
    CHECK(xt::allclose(changed, expected, 1e-5, 1e-4));
  }
  // Gradients as without the guard (backward reads W as stored).
  Tensor x = param({10, 4}, 4), w = param({5, 4}, 5), b = param({5}, 6);
  sum(F::linear(x, w, b) * F::linear(x, w, b)).backward();
  const Array dx = x.grad().value(), dw = w.grad().value(), db = b.grad().value();
  x.zero_grad(), w.zero_grad(), b.zero_grad();
  F::PackedWeightsGuard packed;
  sum(F::linear(x, w, b) * F::linear(x, w, b)).backward();
  CHECK(xt::allclose(x.grad().value(), dx, 1e-5, 1e-5));
  CHECK(xt::allclose(w.grad().value(), dw, 1e-5, 1e-5));
  CHECK(xt::allclose(b.grad().value(), db, 1e-5, 1e-5));
}

TEST_CASE("PackedWeightsGuard: a copy lives while its weight does; release_packed_weights frees it") {
  // memory_allocated() counts the copies too (they come from the caching allocator); other tests'
  // arrays may come and go around these lines, so the checks compare differences of a copy's size.
  const std::size_t weight_bytes = 300 * 64 * sizeof(float);
  {
    Tensor w = param({300, 64}, 30), x = param({10, 64}, 31);
    const std::size_t arrays = memory_allocated();
    {
      F::PackedWeightsGuard packed;
      F::linear(x, w);
    }
    const std::size_t with_copy = memory_allocated();
    CHECK(with_copy >= arrays + weight_bytes);  // the copy outlives the guard
    F::release_packed_weights();
    CHECK(memory_allocated() + weight_bytes <= with_copy);
    {
      F::PackedWeightsGuard packed;
      F::linear(x, w);  // made again
    }
    CHECK(memory_allocated() >= arrays + weight_bytes);
  }
  // The weight freed: its copy goes when the next outermost guard ends.
  const std::size_t after_free = memory_allocated();
  { F::PackedWeightsGuard packed; }
  CHECK(memory_allocated() + weight_bytes <= after_free);
  // One row (below kPackedMinRows) reads the weight as stored: no copy outlives the guard.
  static_assert(F::kPackedMinRows > 1, "one row must not be packed");
  Tensor w = param({300, 64}, 32), x = param({1, 64}, 33);
  const std::size_t arrays = memory_allocated();
  {
    F::PackedWeightsGuard packed;
    F::linear(x, w);
  }
  CHECK(memory_allocated() < arrays + weight_bytes);
}

TEST_CASE("linear with a fused ReLU is relu(linear), forward and backward, on GEMM and few-row paths; GELU too") {
  for (const std::size_t rows : {std::size_t{3}, std::size_t{40}}) {
    Tensor x = param({rows, 37}, 20), w = param({130, 37}, 21), b = param({130}, 22);
    Tensor x2 = Tensor(x.value()).set_requires_grad(), w2 = Tensor(w.value()).set_requires_grad();
    Tensor b2 = Tensor(b.value()).set_requires_grad();
    Tensor fused = F::linear(x, w, b, F::Activation::relu), plain = relu(F::linear(x2, w2, b2));
    CHECK(xt::allclose(fused.value(), plain.value(), 1e-6, 1e-6));
    CHECK(xt::any(xt::equal(fused.value(), 0.f)));  // the clamp is exercised
    Tensor dy = randn(fused.shape());
    fused.backward(dy);
    plain.backward(dy);
    CHECK(xt::allclose(x.grad().value(), x2.grad().value(), 1e-5, 1e-5));
    CHECK(xt::allclose(w.grad().value(), w2.grad().value(), 1e-5, 1e-5));
    CHECK(xt::allclose(b.grad().value(), b2.grad().value(), 1e-5, 1e-5));
  }
  // Gradcheck away from the ReLU's kink: inputs whose pre-activations are all at least 0.05 from 0
  // (the numerical derivative steps by 0.01).
  Tensor x3, w3, b3;
  for (int seed = 1;; seed += 3) {
    x3 = param({2, 3, 4}, seed), w3 = param({5, 4}, seed + 1), b3 = param({5}, seed + 2);
    const Array z = F::linear(x3, w3, b3).value(), z0 = F::linear(x3, w3).value();
    if (xt::amin(xt::abs(z))() > 0.05f && xt::amin(xt::abs(z0))() > 0.05f) break;
  }
  CHECK(gradcheck([](Inputs in) { return F::linear(in[0], in[1], in[2], F::Activation::relu); }, {x3, w3, b3}));
  CHECK(gradcheck([](Inputs in) { return F::linear(in[0], in[1], Tensor(), F::Activation::relu); }, {x3, w3}));
  CHECK(gradcheck([](Inputs in) { return F::linear(in[0], in[1], in[2], F::Activation::gelu); }, {x3, w3, b3}));
  CHECK(F::linear(x3, w3, b3, F::Activation::gelu).value() == gelu(F::linear(x3, w3, b3)).value());
  // A NaN pre-activation goes to 0, as relu sends it, through both the GEMM and the few-row paths.
  for (const std::size_t rows : {std::size_t{2}, std::size_t{40}}) {
    Tensor xn = param({rows, 4}, 7);
    xn.mutable_value()(0, 1) = std::numeric_limits<float>::quiet_NaN();
    const Array fused = F::linear(xn, w3, b3, F::Activation::relu).value();
    const Array plain = relu(F::linear(xn, w3, b3)).value();
    CHECK(xt::all(xt::equal(xt::view(fused, 0, xt::all()), 0.f)));
    CHECK(xt::allclose(fused, plain, 1e-6, 1e-6));
  }
  CHECK(F::activation_from_name("relu") == F::Activation::relu);
  CHECK(F::activation_from_name("gelu") == F::Activation::gelu);
  CHECK_THROWS_WITH_AS(F::activation_from_name("tanh"), "activation must be \"relu\" or \"gelu\", got \"tanh\"",
                       Error);
  CHECK_THROWS_WITH_AS(F::linear(x3, w3, param({4}, 1), F::Activation::relu),
                       doctest::Contains("linear_relu: bias must have shape [5]"), Error);
}

TEST_CASE("linear_rows: a block of the weight's rows, as linear of the narrowed weight, gradients into the block") {
  Tensor x = param({2, 3, 4}, 1), w = param({6, 4}, 2), b = param({6}, 3);
  const Tensor y = F::linear_rows(x, w, b, 2, 3);
  const Tensor expected = F::linear(x, narrow(w, 0, 2, 3), narrow(b, 0, 2, 3));
  CHECK(y.shape() == Shape{2, 3, 3});
  CHECK(xt::allclose(y.value(), expected.value()));
  CHECK(xt::allclose(F::linear_rows(x, w, Tensor(), 0, 6).value(), F::linear(x, w).value()));
  // Rows outside the block get no gradient; the block's gradient is the narrowed one's.
  sum(y).backward();
  for (std::size_t r : {0, 1, 5}) {
    for (std::size_t c = 0; c < 4; ++c) CHECK(w.grad().value()(r, c) == 0.f);
    CHECK(b.grad().value()(r) == 0.f);
  }
  CHECK(gradcheck([](Inputs in) { return F::linear_rows(in[0], in[1], in[2], 1, 4); }, {x, w, b}));
  CHECK(gradcheck([](Inputs in) { return F::linear_rows(in[0], in[1], Tensor(), 3, 3); }, {x, w}));
  CHECK(gradcheck([](Inputs in) { return F::linear_rows(in[0], in[1], in[2], 2, 2); }, {param({1, 4}, 7), w, b}));
}

TEST_CASE("linear_rows: bad rows and shapes") {
  CHECK_THROWS_WITH_AS(F::linear_rows(zeros({2, 3}), zeros({4, 3}), Tensor(), 2, 3),
                       doctest::Contains("linear_rows: rows [2, 5) are outside the weight's 4 rows (weight [4,3])"),
                       Error);
  CHECK_THROWS_WITH_AS(F::linear_rows(zeros({2, 3}), zeros({4, 3}), zeros({2}), 0, 2),
                       doctest::Contains("linear_rows: bias must have shape [4] (the weight's rows), got [2]"), Error);
  CHECK_THROWS_WITH_AS(F::linear_rows(zeros({2, 3}), zeros({4, 5}), Tensor(), 0, 1),
                       doctest::Contains("linear_rows: input [2,3] does not end in in_features 5 of weight [4,5]"),
                       Error);
  CHECK_THROWS_WITH_AS(F::linear_rows(zeros({2, 3}), zeros({3}), Tensor(), 0, 1),
                       doctest::Contains("linear_rows: weight must be 2-D"), Error);
  CHECK_THROWS_WITH_AS(F::linear_rows(Tensor(), zeros({4, 3}), Tensor(), 0, 1),
                       doctest::Contains("linear_rows: input and weight must be defined"), Error);
}

TEST_CASE("linear: bad shapes") {
  CHECK_THROWS_WITH_AS(F::linear(zeros({2, 3}), zeros({4, 5})),
                       doctest::Contains("linear: input [2,3] does not end in in_features 5 of weight [4,5]"), Error);
  CHECK_THROWS_WITH_AS(F::linear(zeros({2, 3}), zeros({4, 3}), zeros({3})),
                       doctest::Contains("bias must have shape [4], got [3]"), Error);
  CHECK_THROWS_WITH_AS(F::linear(zeros({2, 3}), zeros({3})), doctest::Contains("weight must be 2-D"), Error);
}

TEST_CASE("attention matches the naive computation with causal and padding masks") {
  const std::size_t B = 2, T = 3, S = 4, H = 2;
  Tensor q = param({B, T, 6}, 4), k = param({B, S, 6}, 5), v = param({B, S, 8}, 6);
  Array mask = Array::from_shape({T, S});
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t s = 0; s < S; ++s) mask(t, s) = s > t + 1 ? -INFINITY : 0.1f * float(s);
  Mask padding = {{false, false, false, true}, {false, true, false, true}};
  F::AttentionOptions options;
  options.attn_mask = mask;
  options.key_padding_mask = padding;
  options.need_weights = true;
  F::AttentionResult r = F::scaled_dot_product_attention(q, k, v, H, options);
  Array expected = naive_attention(q.value(), k.value(), v.value(), H, &mask, &padding);
  CHECK(xt::allclose(r.output.value(), expected, 1e-5, 1e-6));
  // Averaged weights: rows sum to 1, padded keys get nothing.
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < T; ++t) {
      float total = 0;
      for (std::size_t s = 0; s < S; ++s) total += r.weights.value()(b, t, s);
      CHECK(total == doctest::Approx(1.f));
      CHECK(r.weights.value()(b, t, 3) == 0.f);
    }
  CHECK(gradcheck([&](Inputs in) { return F::scaled_dot_product_attention(in[0], in[1], in[2], H, options).output; },
                  {q, k, v}));
}

TEST_CASE("attention: a query whose keys are all masked gives zeros, not NaN, and zero gradient") {
  Tensor q = param({1, 2, 4}, 7), k = param({1, 3, 4}, 8), v = param({1, 3, 4}, 9);
  Array mask = {{-INFINITY, -INFINITY, -INFINITY}, {0.f, 0.f, -INFINITY}};
  F::AttentionOptions options;
  options.attn_mask = mask;
  Tensor out = F::scaled_dot_product_attention(q, k, v, 2, options).output;
  for (std::size_t i = 0; i < 4; ++i) CHECK(out.value()(0, 0, i) == 0.f);
  CHECK(std::isfinite(out.value()(0, 1, 0)));
  out.backward(ones({1, 2, 4}));
  for (float g : q.grad().value()) CHECK(std::isfinite(g));
  CHECK(gradcheck([&](Inputs in) { return F::scaled_dot_product_attention(in[0], in[1], in[2], 2, options).output; },
                  {q, k, v}));
}

TEST_CASE("attention: self-attention with q, k and v the same tensor, gradcheck") {
  Tensor x = param({2, 3, 4}, 10);
  F::AttentionOptions options;
  options.attn_mask = F::causal_mask(3);
  CHECK(gradcheck([&](Inputs in) { return F::scaled_dot_product_attention(in[0], in[0], in[0], 2, options).output; },
                  {x}));
}

TEST_CASE("attention adds its gradients to what q, k and v hold already, alone or as one tensor") {
  for (const Shape shape : {Shape{2, 3, 4}, Shape{4, 64, 32}}) {  // small, and long enough for the threads
    CAPTURE(shape_str(shape));
    Tensor q = param(shape, 31), k = param(shape, 32), v = param(shape, 33);
    F::AttentionOptions options;
    options.attn_mask = F::causal_mask(shape[1]);
    const auto attention = [&](const Tensor& a, const Tensor& b, const Tensor& c) {
      return sum(F::scaled_dot_product_attention(a, b, c, 2, options).output);
    };
    attention(q, k, v).backward();  // alone: the attention's part of each gradient
    const std::vector<Array> part = {q.grad().value(), k.grad().value(), v.grad().value()};
    // q, k and v also feed sums recorded after the attention, whose backward runs first: each
    // gradient holds ones when the attention's part arrives.
    Tensor q2 = param(shape, 31), k2 = param(shape, 32), v2 = param(shape, 33);
    const Tensor attended = attention(q2, k2, v2);
    const Tensor others = sum(q2) + sum(k2) + sum(v2);
    (attended + others).backward();
    const std::vector<Array> with_ones = {q2.grad().value(), k2.grad().value(), v2.grad().value()};
    for (std::size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(xt::allclose(with_ones[i], part[i] + 1.f, 1e-6, 1e-6));  // a GEMM's sums may start from the ones
    }
    // One tensor as q, k and v: the three parts add up in one gradient, as attention on copies.
    Tensor x = param(shape, 34), xq = param(shape, 34), xk = param(shape, 34), xv = param(shape, 34);
    attention(x, x, x).backward();
    attention(xq, xk, xv).backward();
    CHECK(xt::allclose(x.grad().value(), xq.grad().value() + xk.grad().value() + xv.grad().value(), 1e-5, 1e-6));
  }
}

TEST_CASE("attention: dropout on the weights is seeded, inverted, and gradchecked with its mask fixed") {
  Tensor q = param({2, 3, 4}, 11), k = param({2, 5, 4}, 12), v = param({2, 5, 4}, 13);
  auto run = [&](Inputs in, std::uint64_t seed) {
    Generator g(seed);
    F::AttentionOptions options;
    options.training = true;
    options.dropout_p = 0.3f;
    options.generator = &g;
    return F::scaled_dot_product_attention(in[0], in[1], in[2], 2, options).output;
  };
  CHECK(run({q, k, v}, 1).value() == run({q, k, v}, 1).value());
  CHECK(run({q, k, v}, 1).value() != run({q, k, v}, 2).value());
  CHECK(gradcheck([&](Inputs in) { return run(in, 3); }, {q, k, v}));
}

TEST_CASE("attention with masks and dropout, gradchecked on both backward paths: weights kept, weights made again") {
  // S <= dk + dv: the backward reads the forward's weights; S > dk + dv: it makes them again from
  // each row's softmax statistics, with the masks and the dropout multipliers drawn again.
  for (const std::size_t width : {std::size_t{8}, std::size_t{4}}) {  // dk = dv = 4 (kept), 2 (made again)
    CAPTURE(width);
    Tensor q = param({2, 6, width}, 21), k = param({2, 6, width}, 22), v = param({2, 6, width}, 23);
    Mask padding = Mask::from_shape({2, 6});
    padding.fill(false);
    padding(1, 4) = true;
    auto run = [&](Inputs in) {
      Generator g(9);
      F::AttentionOptions options;
      options.attn_mask = F::causal_mask(6);
      options.key_padding_mask = padding;
      options.training = true;
      options.dropout_p = 0.25f;
      options.generator = &g;
      return F::scaled_dot_product_attention(in[0], in[1], in[2], 2, options).output;
    };
    CHECK(gradcheck(run, {q, k, v}));
  }
}

TEST_CASE("attention with dropout: the same output and gradients on one thread and on two") {
  // Long enough for the (batch, head) blocks to go over the threads.
  Tensor q = param({4, 64, 32}, 14), k = param({4, 64, 32}, 15), v = param({4, 64, 32}, 16);
  auto run = [&](int threads) {
    const int before = get_num_threads();
    set_num_threads(threads);
    for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    Generator g(5);
    F::AttentionOptions options;
    options.training = true;
    options.dropout_p = 0.2f;
    options.generator = &g;
    options.attn_mask = F::causal_mask(64);
    Tensor out = F::scaled_dot_product_attention(q, k, v, 4, options).output;
    sum(out * out).backward();
    set_num_threads(before);
    return std::vector<Array>{out.value(), q.grad().value(), k.grad().value(), v.grad().value()};
  };
  const auto one = run(1), two = run(2);
  for (std::size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    CHECK(one[i] == two[i]);
  }
}

TEST_CASE("attention keeps no (B, H, T, S) block for its backward: the weights are made again from row statistics") {
  const std::size_t B = 2, H = 4, T = 128, S = 128, E = 32;
  Tensor q = param({B, T, E}, 17), k = param({B, S, E}, 18), v = param({B, S, E}, 19);
  Mask padding = Mask::from_shape({B, S});
  padding.fill(false);
  padding(1, S - 1) = true;
  F::AttentionOptions options;
  options.key_padding_mask = padding;
  options.training = true;
  options.dropout_p = 0.1f;
  const std::size_t before = memory_allocated();
  Tensor out = F::scaled_dot_product_attention(q, k, v, H, options).output;
  const std::size_t held = memory_allocated() - before;
  const std::size_t out_bytes = B * T * E * sizeof(float), weights_bytes = B * H * T * S * sizeof(float);
  CAPTURE(held);
  CHECK(held < out_bytes + weights_bytes / 8);  // the output, and nothing of the weights' size
  sum(out).backward();
  CHECK(q.grad().defined());
}

TEST_CASE("attention: num_keys uses the first keys of longer k and v, as attention on those keys alone") {
  const std::size_t B = 2, T = 3, S = 5, used = 3, H = 2;
  Tensor q = param({B, T, 4}, 7), k = param({B, S, 4}, 8), v = param({B, S, 6}, 9);
  Mask padding = {{false, true, false}, {false, false, false}};  // (B, used)
  F::AttentionOptions options;
  options.key_padding_mask = padding;
  options.num_keys = used;
  const Tensor out = F::scaled_dot_product_attention(q, k, v, H, options).output;
  options.num_keys = 0;
  const Tensor expected =
      F::scaled_dot_product_attention(q, narrow(k, 1, 0, used), narrow(v, 1, 0, used), H, options).output;
  CHECK(xt::allclose(out.value(), expected.value(), 1e-6, 1e-7));
  sum(out).backward();  // keys and values beyond num_keys get no gradient
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t s = used; s < S; ++s) {
      for (std::size_t c = 0; c < 4; ++c) CHECK(k.grad().value()(b, s, c) == 0.f);
      for (std::size_t c = 0; c < 6; ++c) CHECK(v.grad().value()(b, s, c) == 0.f);
    }
  options.num_keys = used;
  CHECK(gradcheck([&](Inputs in) { return F::scaled_dot_product_attention(in[0], in[1], in[2], H, options).output; },
                  {q, k, v}));
  options.num_keys = S + 1;
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, k, v, H, options),
                       doctest::Contains("num_keys 6 exceeds the 5 keys that k [2,5,4] holds"), Error);
}

TEST_CASE("gathered_attention: each row's keys and values gathered from per-position blocks, as plain attention") {
  // Three positions holding 2, 3 and 4 rows; six query rows, each reading one row of every position.
  const std::size_t B = 6, T = 3, H = 2, E = 8, Ev = 6;
  const std::size_t rows_at[T] = {2, 3, 4};
  std::vector<Array> keys, values;
  std::vector<Mask> padding;
  for (std::size_t s = 0; s < T; ++s) {
    keys.push_back(param({rows_at[s], E}, 20 + s).value());
    values.push_back(param({rows_at[s], Ev}, 30 + s).value());
    Mask m = Mask::from_shape({rows_at[s]});
    for (std::size_t n = 0; n < rows_at[s]; ++n) m(n) = s == 1 && n == 2;  // one padded key
    padding.push_back(m);
  }
  const std::vector<std::uint32_t> index = {0, 0, 0, 1, 1, 1, 1, 2, 3, 0, 2, 2, 1, 0, 3, 0, 1, 1};  // (B, T)
  const Tensor q = param({B, 1, E}, 40);
  F::GatheredKeyValues kv;
  kv.length = T;
  for (std::size_t s = 0; s < T; ++s) {
    kv.keys.push_back(&keys[s]);
    kv.values.push_back(&values[s]);
      kv.padding.push_back(&padding[s]);
  }
  kv.index = &index;
  // The same keys gathered into (B, T, E) and (B, T, Ev) with a (B, T) padding mask.
  Array k = Array::from_shape({B, T, E}), v = Array::from_shape({B, T, Ev});
  Mask pad = Mask::from_shape({B, T});
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t s = 0; s < T; ++s) {
      const std::uint32_t n = index[b * T + s];
      for (std::size_t i = 0; i < E; ++i) k(b, s, i) = keys[s](n, i);
      for (std::size_t i = 0; i < Ev; ++i) v(b, s, i) = values[s](n, i);
      pad(b, s) = padding[s](n);
    }
  }
  const Array expected = naive_attention(q.value(), k, v, H, nullptr, &pad);
  for (const std::size_t group : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
    CAPTURE(group);
    kv.group = group;
    const Tensor out = F::gathered_attention(q, kv, H);
    CHECK(shape_of(out.value()) == Shape{B, 1, Ev});
    CHECK(xt::allclose(out.value(), expected, 1e-5, 1e-6));
  }
  // A row whose every key is padding attends to nothing.
  std::vector<Mask> all_padded(T);
  for (std::size_t s = 0; s < T; ++s) {
    all_padded[s] = Mask::from_shape({rows_at[s]});
    all_padded[s].fill(true);
    kv.padding[s] = &all_padded[s];
  }
  kv.group = 1;
  const Tensor nothing = F::gathered_attention(q, kv, H);
  for (const float x : nothing.value()) CHECK(x == 0.f);
  // Bad input names what is wrong.
  std::vector<std::uint32_t> outside = index;
  outside[2] = 4;  // position 2 holds 4 rows
  kv.index = &outside;
  CHECK_THROWS_WITH_AS(F::gathered_attention(q, kv, H), doctest::Contains("row 0 reads row 4 of position 2, which holds 4 rows"),
                       Error);
  kv.index = &index;
  kv.group = 4;
  CHECK_THROWS_WITH_AS(F::gathered_attention(q, kv, H), doctest::Contains("a group of 4 rows does not divide the batch of 6"),
                       Error);
  kv.group = 1;
  CHECK_THROWS_WITH_AS(F::gathered_attention(q, kv, 3), doctest::Contains("3 heads do not divide q's width 8"), Error);
  kv.keys.pop_back();
  CHECK_THROWS_WITH_AS(F::gathered_attention(q, kv, H), doctest::Contains("3 positions need 3 key, value and padding blocks"),
                       Error);
}

TEST_CASE("attention: bad input names shapes") {
  Tensor q = zeros({2, 3, 6}), k = zeros({2, 4, 6}), v = zeros({2, 4, 6});
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, k, v, 4), doctest::Contains("not divisible by 4 heads"), Error);
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, zeros({2, 5, 6}), v, 2), doctest::Contains("disagree"), Error);
  F::AttentionOptions options;
  options.attn_mask = Array::from_shape({3, 3});
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, k, v, 2, options),
                       doctest::Contains("attn_mask has shape [3,3], expected [3,4]"), Error);
  options.attn_mask.reset();
  options.key_padding_mask = Mask::from_shape({2, 3});
  CHECK_THROWS_WITH_AS(F::scaled_dot_product_attention(q, k, v, 2, options),
                       doctest::Contains("key_padding_mask has shape [2,3], expected [2,4]"), Error);
}

TEST_CASE("causal_mask: 0 on and below the diagonal, -inf above") {
  Array m = F::causal_mask(3);
  CHECK(m(1, 1) == 0.f);
  CHECK(m(2, 0) == 0.f);
  CHECK(m(0, 1) == -std::numeric_limits<float>::infinity());
}

TEST_CASE("causal_mask after past keys: query i at position past + i sees keys 0 .. past + i") {
  const float blocked = -std::numeric_limits<float>::infinity();
  const Array m = F::causal_mask(2, 3);  // (2, 5)
  REQUIRE(shape_of(m) == Shape{2, 5});
  CHECK(m == Array{{0.f, 0.f, 0.f, 0.f, blocked}, {0.f, 0.f, 0.f, 0.f, 0.f}});
  CHECK(F::causal_mask(3, 0) == F::causal_mask(3));
}
