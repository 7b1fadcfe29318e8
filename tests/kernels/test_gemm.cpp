// kernels::gemm against a loop in double: every transpose pair, row strides wider than the rows,
// strides that take the padded-copy path (multiples of 4 KB), beta 0 over NaN, beta 1, alpha,
// K = 0, and calls from inside an OpenMP parallel region.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <omp.h>

#include <xgrad/kernels/gemm.hpp>

using xgrad::kernels::gemm;

namespace {

/// A stored (rows, cols) matrix with row stride ld >= cols; the padding holds NaN, so that a
/// read past a row's end shows in the result.
struct Stored {
  std::size_t rows, cols, ld;
  std::vector<float> data;
  Stored(std::size_t r, std::size_t c, std::size_t stride, std::mt19937& rng) : rows(r), cols(c), ld(stride) {
    data.assign(rows * ld, std::numeric_limits<float>::quiet_NaN());  // padding stays NaN
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t j = 0; j < cols; ++j) data[i * ld + j] = uniform(rng);
    }
  }
  float at(std::size_t i, std::size_t j) const { return data[i * ld + j]; }
};

/// Checks gemm(ta, tb, M, N, K, alpha, A, B, beta, C) against the loop, with the given strides
/// (0: dense). C starts as NaN where beta is 0, else random.
void check_product(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, float alpha, float beta,
                   std::size_t lda = 0, std::size_t ldb = 0, std::size_t ldc = 0) {
  std::mt19937 rng(static_cast<unsigned>(M * 131 + N * 17 + K + ta * 7 + tb * 3));
  const std::size_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
  Stored A(a_rows, a_cols, lda ? lda : a_cols, rng), B(b_rows, b_cols, ldb ? ldb : b_cols, rng);
  Stored C(M, N, ldc ? ldc : N, rng);
  if (beta == 0.f) {
    for (std::size_t i = 0; i < M; ++i) {
      for (std::size_t j = 0; j < N; ++j) C.data[i * C.ld + j] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  std::vector<double> expected(M * N);
  for (std::size_t i = 0; i < M; ++i) {
    for (std::size_t j = 0; j < N; ++j) {
      double sum = 0;
      for (std::size_t k = 0; k < K; ++k) sum += double(ta ? A.at(k, i) : A.at(i, k)) * (tb ? B.at(j, k) : B.at(k, j));
      expected[i * N + j] = alpha * sum + (beta == 0.f ? 0.0 : beta * double(C.at(i, j)));
    }
  }
  gemm(ta, tb, M, N, K, alpha, A.data.data(), A.ld, B.data.data(), B.ld, beta, C.data.data(), C.ld);
  double worst = 0;
  for (std::size_t i = 0; i < M; ++i) {
    for (std::size_t j = 0; j < N; ++j) worst = std::max(worst, std::fabs(C.at(i, j) - expected[i * N + j]));
  }
  INFO("op(A) (" << M << ", " << K << ")" << (ta ? "^T" : "") << " x op(B) (" << K << ", " << N << ")"
                 << (tb ? "^T" : "") << ", lda " << A.ld << ", ldb " << B.ld << ", ldc " << C.ld);
  CHECK(worst < 1e-4 * std::sqrt(static_cast<double>(K) + 1));  // NaN fails this too
  for (std::size_t i = 0; i < M; ++i) {  // C's padding (NaN) is never written
    for (std::size_t j = N; j < C.ld; ++j) CHECK(std::isnan(C.data[i * C.ld + j]));
  }
}

}  // namespace

TEST_CASE("every transpose pair against the loop, dense and with wider row strides") {
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      check_product(ta, tb, 5, 7, 3, 1.f, 0.f);
      check_product(ta, tb, 33, 17, 65, 0.5f, 1.f);
      check_product(ta, tb, 1, 40, 24, 1.f, 1.f);  // a single row: a decoding step
      check_product(ta, tb, 12, 9, 20, 1.f, 0.f, (ta ? 12 : 20) + 5, (tb ? 20 : 9) + 3, 9 + 4);
    }
  }
}

TEST_CASE("operands with a row stride of a multiple of 4 KB take the padded copy and give the same product") {
  // A transposed with 1024 columns (lda 1024) and B with 1024 columns (ldb 1024), K >= 64.
  check_product(true, false, 1024, 8, 64, 1.f, 0.f);
  check_product(false, false, 8, 1024, 64, 1.f, 1.f);
  check_product(true, false, 40, 24, 70, 1.f, 0.f, 1024, 2048);  // strided views into wider rows
  check_product(false, true, 40, 24, 70, 1.f, 0.f, 1024, 1024);  // rows along M and N: no copy needed
}

TEST_CASE("few rows and many columns: the columns split over the threads give the same product") {
  const int threads = omp_get_max_threads();
  for (const int split : {2, 3}) {  // blocks of whole 64 columns, the last thread the remainder
    omp_set_num_threads(split);
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        check_product(ta, tb, 32, 1000, 40, 1.f, 0.f);
        check_product(ta, tb, 128, 200, 33, 0.5f, 1.f);
        check_product(ta, tb, 3, 130, 20, 1.f, 0.f, (ta ? 3 : 20) + 5, (tb ? 20 : 130) + 3, 130 + 4);
      }
    }
  }
  omp_set_num_threads(threads);
}

TEST_CASE("gemm_u8s8s32 is exact for few and many rows, on one to three threads") {
  const int threads = omp_get_max_threads();
  for (const int split : {1, 2, 3}) {
    omp_set_num_threads(split);
    for (const std::size_t M : {9, 32, 128, 129}) {
      for (const std::size_t N : {130, 200, 1000}) {
        const std::size_t K = 33;
        std::vector<std::uint8_t> A(M * K);
        std::vector<std::int8_t> B(N * K);
        for (std::size_t i = 0; i < A.size(); ++i) A[i] = static_cast<std::uint8_t>((i * 37) % 128);
        for (std::size_t i = 0; i < B.size(); ++i) B[i] = static_cast<std::int8_t>(static_cast<int>((i * 53) % 255) - 127);
        std::vector<std::int32_t> C(M * N, -1);
        xgrad::kernels::gemm_u8s8s32(M, N, K, A.data(), B.data(), C.data());
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < M; ++i) {
          for (std::size_t j = 0; j < N; ++j) {
            std::int32_t sum = 0;
            for (std::size_t k = 0; k < K; ++k) sum += std::int32_t{A[i * K + k]} * std::int32_t{B[j * K + k]};
            wrong += C[i * N + j] != sum;
          }
        }
        CAPTURE(split);
        CAPTURE(M);
        CAPTURE(N);
        CHECK(wrong == 0);
      }
    }
  }
  omp_set_num_threads(threads);
}

TEST_CASE("K = 0 scales C by beta; M or N = 0 touch nothing") {
  std::vector<float> C{1.f, 2.f, 3.f, 4.f};
  gemm(false, false, 2, 2, 0, 1.f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2);
  CHECK(C == std::vector<float>{0.5f, 1.f, 1.5f, 2.f});
  std::vector<float> nan(4, std::numeric_limits<float>::quiet_NaN());
  gemm(false, false, 2, 2, 0, 1.f, nullptr, 1, nullptr, 2, 0.f, nan.data(), 2);
  CHECK(nan == std::vector<float>(4, 0.f));
  gemm(false, false, 0, 2, 3, 1.f, nullptr, 3, nullptr, 2, 0.f, nullptr, 2);
}

TEST_CASE("called from inside a parallel region, each thread's product is its own") {
  constexpr int kCount = 16;
  constexpr std::size_t n = 24;
  std::vector<float> a(kCount * n * n), b(kCount * n * n), c(kCount * n * n);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7) % 13) - 6.f, b[i] = static_cast<float>((i * 5) % 11) - 5.f;
#pragma omp parallel for num_threads(2)
  for (int p = 0; p < kCount; ++p) gemm(false, true, n, n, n, 1.f, &a[p * n * n], &b[p * n * n], 0.f, &c[p * n * n]);
  for (int p = 0; p < kCount; ++p) {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        float sum = 0;  // small integers: exact in float
        for (std::size_t k = 0; k < n; ++k) sum += a[p * n * n + i * n + k] * b[p * n * n + j * n + k];
        CHECK(c[p * n * n + i * n + j] == sum);
      }
    }
  }
}
