// bf16 autocast: rounding to bfloat16, and products under xgrad::autocast that equal fp32 products
// of the rounded inputs and stay within bf16's rounding of the fp32 ones; the scope restores.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <utility>

#include <omp.h>

#include <xgrad/kernels/bf16.hpp>
#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/runtime_info.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

TEST_CASE("round_bf16 keeps 8 significant bits, ties to even, NaN and infinities") {
  CHECK(kernels::round_bf16(1.f) == 1.f);
  CHECK(kernels::round_bf16(1.f + 1.f / 256) == 1.f);            // half way: to the even neighbour
  CHECK(kernels::round_bf16(1.f + 3.f / 256) == 1.f + 4.f / 256);  // half way up: to even
  CHECK(kernels::round_bf16(1.f + 1.f / 256 + 1.f / 4096) == 1.f + 2.f / 256);
  CHECK(kernels::round_bf16(-3.140625f) == -3.140625f);  // exactly representable
  CHECK(std::isnan(kernels::round_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(kernels::round_bf16(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
  CHECK(std::isinf(kernels::round_bf16(std::numeric_limits<float>::max())));  // past the largest bf16
  Generator generator(2);
  const Array x = randn({1000}, generator).value();
  for (const float v : x) CHECK(std::abs(kernels::round_bf16(v) - v) <= std::abs(v) * std::ldexp(1.f, -8));
}

TEST_CASE("Under autocast(bf16) matmul takes bf16 inputs with fp32 sums, and the scope restores fp32") {
  Generator generator(4);
  const Tensor a = randn({33, 70}, generator), b = randn({70, 21}, generator);
  const Array fp32 = matmul(a, b).value();
  Array bf16;
  {
    autocast scope(Precision::bf16);
    CHECK(autocast_precision() == Precision::bf16);
    bf16 = matmul(a, b).value();
  }
  CHECK(autocast_precision() == Precision::fp32);
  CHECK(matmul(a, b).value() == fp32);
  const Array expected = matmul(round_bf16(a), round_bf16(b)).value();  // fp32 products of rounded inputs
  CHECK(xt::amax(xt::abs(bf16 - expected))() < 1e-5f);
  // Within bf16 rounding of fp32: each product off by at most about 2^-7 |a||b| (two roundings of 2^-8).
  const Array bound = matmul(abs(a), abs(b)).value() * std::ldexp(1.f, -7);
  CHECK(xt::all(xt::abs(bf16 - fp32) <= bound + 1e-6f));
  CHECK_FALSE(bf16 == fp32);
}

TEST_CASE("Under autocast(bf16) attention takes bf16 queries, keys and values; gradients flow in fp32") {
  Generator generator(6);
  const Tensor q = randn({2, 5, 8}, generator).set_requires_grad(), k = randn({2, 7, 8}, generator),
               v = randn({2, 7, 8}, generator);
  const Array fp32 = nn::functional::scaled_dot_product_attention(q, k, v, 2).output.value();
  autocast scope(Precision::bf16);
  const Tensor out = nn::functional::scaled_dot_product_attention(q, k, v, 2).output;
  const Array expected =
      nn::functional::scaled_dot_product_attention(round_bf16(q), round_bf16(k), round_bf16(v), 2).output.value();
  CHECK(xt::amax(xt::abs(out.value() - expected))() < 1e-6f);
  CHECK(xt::amax(xt::abs(out.value() - fp32))() < 0.02f);
  sum(out).backward();
  REQUIRE(q.grad().defined());
  CHECK(q.grad().shape() == q.shape());
}

TEST_CASE("Under autocast(bf16) cached decoding equals re-feeding: the cache holds bf16 keys and values") {
  Generator generator(8);
  models::TransformerConfig config = models::TransformerConfig::preset("tiny", 15, 15);
  config.dropout = 0.f;
  models::Transformer model(config, generator);
  model.eval();
  Indices src = Indices::from_shape({3, 6});
  for (auto& id : src) id = 3 + static_cast<std::int64_t>(generator.integer(12));
  autocast scope(Precision::bf16);
  models::TransformerDecoding cached(model, src, 1, true), refed(model, src, 1, false);
  float worst = xt::amax(xt::abs(cached.start() - refed.start()))();
  Indices next = Indices::from_shape({3});
  for (int step = 0; step < 4; ++step) {
    for (std::size_t b = 0; b < 3; ++b) next(b) = 3 + static_cast<std::int64_t>(generator.integer(12));
    worst = std::max(worst, xt::amax(xt::abs(cached.step(next) - refed.step(next)))());
  }
  CHECK(worst < 1e-4f);  // the same bf16 inputs; fp32 keys in the cache would differ by about 1e-2
}

TEST_CASE("Under autocast(bf16) linear's bf16 weights follow the weight's changes, forward and backward") {
  Generator generator(12);
  const Tensor x = randn({6, 40}, generator).set_requires_grad(), w = randn({24, 40}, generator).set_requires_grad(),
               b = randn({24}, generator);
  const Tensor dy = randn({6, 24}, generator);
  // What bf16 products give: fp32 products of the rounded inputs (dy rounded too, in backward).
  const auto expected = [&](const Array& weight) {
    autocast fp32(Precision::fp32);
    const Array y = nn::functional::linear(round_bf16(x), round_bf16(Tensor(weight)), b).value();
    const Array dx = matmul(round_bf16(dy), round_bf16(Tensor(weight))).value();
    return std::make_pair(y, dx);
  };
  autocast scope(Precision::bf16);
  for (int change = 0; change < 3; ++change) {
    CAPTURE(change);
    const Tensor y = nn::functional::linear(x, w, b);
    x.zero_grad();
    sum(y * dy).backward();
    const auto [y_expected, dx_expected] = expected(w.value());
    CHECK(xt::amax(xt::abs(y.value() - y_expected))() < 1e-5f);
    CHECK(xt::amax(xt::abs(x.grad().value() - dx_expected))() < 1e-5f);
    // The weight changes in place, as an optimizer's step does: the next call sees the new values.
    w.mutable_value() += 0.5f;
  }
  // A sub-block of rows (as attention's fused projections take) is cached apart from the whole.
  const Tensor rows = nn::functional::linear_rows(x, w, b, 8, 8);
  const Array all_rows = expected(w.value()).first;  // (6, 24): rows 8 .. 15 of W are its columns 8 .. 15
  Array rows_expected = Array::from_shape({6, 8});
  for (std::size_t i = 0; i < 6; ++i) {
    for (std::size_t j = 0; j < 8; ++j) rows_expected(i, j) = all_rows(i, 8 + j);
  }
  CHECK(xt::amax(xt::abs(rows.value() - rows_expected))() < 1e-5f);
}

TEST_CASE("gemm_bf16 equals the fp32 GEMM of bf16-rounded inputs: transposes, strides, alpha and beta") {
  Generator generator(10);
  const int max_threads = omp_get_max_threads();
  const std::size_t M = 37, K = 67, pad = 3;  // odd sizes, and rows with gaps
  // N = 200: on 2 and 3 threads the columns split over them (the third thread's block empty).
  for (const auto& shape : {std::pair<std::size_t, int>{45, 1}, {200, 1}, {200, 2}, {200, 3}}) {
    const std::size_t N = shape.first;  // not a structured binding: Clang 14 cannot capture one (CAPTURE)
    const int threads = shape.second;
    omp_set_num_threads(threads);
    for (const bool trans_a : {false, true}) {
      for (const bool trans_b : {false, true}) {
        for (const float beta : {0.f, 1.f, 0.5f}) {
          for (const std::size_t ldc : {N, N + pad}) {
            CAPTURE(N);
            CAPTURE(threads);
            CAPTURE(trans_a);
            CAPTURE(trans_b);
            CAPTURE(beta);
            CAPTURE(ldc);
            const std::size_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K, lda = a_cols + pad;
            const std::size_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N, ldb = b_cols + pad;
            const Array A = randn({a_rows, lda}, generator).value(), B = randn({b_rows, ldb}, generator).value();
            Array C = randn({M, ldc}, generator).value();
            if (beta == 0.f) C(0, 0) = std::numeric_limits<float>::quiet_NaN();  // beta 0 overwrites, NaN included
            const Array A_rounded = round_bf16(Tensor(A)).value(), B_rounded = round_bf16(Tensor(B)).value();
            Array expected = C, bound = Array::from_shape({M, ldc});
            kernels::gemm_fp32(trans_a, trans_b, M, N, K, 0.75f, A_rounded.data(), lda, B_rounded.data(), ldb, beta,
                               expected.data(), ldc);
            // The sums' order differs: a few fp32 roundings of sum |a||b|.
            const Array A_abs = xt::abs(A_rounded), B_abs = xt::abs(B_rounded);
            kernels::gemm_fp32(trans_a, trans_b, M, N, K, 1.f, A_abs.data(), lda, B_abs.data(), ldb, 0.f, bound.data(), ldc);
            kernels::gemm_bf16(trans_a, trans_b, M, N, K, 0.75f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
            float worst = 0.f;
            for (std::size_t i = 0; i < M; ++i) {
              for (std::size_t j = 0; j < N; ++j) {
                const float error = std::abs(C(i, j) - expected(i, j));
                if (!(error <= 1e-6f * (bound(i, j) + std::abs(beta * C(i, j))) + 1e-6f)) worst = std::max(worst, 1.f + error);
              }
              for (std::size_t j = N; j < ldc; ++j) CHECK(C(i, j) == expected(i, j));  // the gaps are left alone
            }
            CHECK(worst == 0.f);
          }
        }
      }
    }
  }
  omp_set_num_threads(max_threads);
  CHECK(kernels::bf16_gemm_native() == runtime_info().bf16_native);
}

TEST_CASE("runtime_info says how bf16 and int8 run here") {
  const RuntimeInfo info = runtime_info();
  CHECK(info.bf16_native == kernels::bf16_gemm_native());
  if (info.bf16_native) {
    CHECK(info.cpu_bf16);
    CHECK(info.bf16.find("native") == 0);
  } else {
    CHECK(info.bf16.find("slower than fp32") != std::string::npos);
  }
  CHECK(info.precision_summary().find("int8: ") == 0);
}
