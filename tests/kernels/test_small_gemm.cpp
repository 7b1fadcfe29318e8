// small_gemm and transpose against loops: every row-block and column-tail case (M, N around
// multiples of the register blocks), A read plain and transposed, overwrite and accumulate.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include <xgrad/kernels/small_gemm.hpp>

using namespace xgrad::kernels;

namespace {

float value(std::size_t i, std::size_t salt) { return std::sin(0.37f * static_cast<float>(i) + 0.11f * salt); }

}  // namespace

TEST_CASE("small_gemm: C (+)= alpha A B for A plain or transposed, B and C with wider rows") {
  for (const std::size_t M : {1, 2, 5, 6, 7, 13, 32}) {
    for (const std::size_t N : {1, 3, 8, 15, 16, 17, 33, 40}) {
      for (const std::size_t K : {1, 4, 32}) {
        for (const bool transposed : {false, true}) {
          for (const bool accumulate : {false, true}) {
            const std::size_t lda = (transposed ? M : K) + 2, ldb = N + 3, ldc = N + 1;
            std::vector<float> A((transposed ? K : M) * lda), B(K * ldb), C(M * ldc);
            for (std::size_t i = 0; i < A.size(); ++i) A[i] = value(i, 1);
            for (std::size_t i = 0; i < B.size(); ++i) B[i] = value(i, 2);
            for (std::size_t i = 0; i < C.size(); ++i) C[i] = value(i, 3);
            const std::vector<float> before = C;
            const float alpha = 0.5f;
            small_gemm(M, N, K, alpha, A.data(), transposed ? 1 : lda, transposed ? lda : 1, B.data(), ldb, accumulate,
                       C.data(), ldc);
            double worst = 0;
            for (std::size_t i = 0; i < M; ++i) {
              for (std::size_t j = 0; j < N; ++j) {
                double sum = 0;
                for (std::size_t k = 0; k < K; ++k) sum += double(transposed ? A[k * lda + i] : A[i * lda + k]) * B[k * ldb + j];
                const double expected = alpha * sum + (accumulate ? before[i * ldc + j] : 0.0);
                worst = std::max(worst, std::fabs(C[i * ldc + j] - expected));
              }
              CHECK(C[i * ldc + N] == before[i * ldc + N]);  // past the row's end: untouched
            }
            INFO("M " << M << ", N " << N << ", K " << K << (transposed ? ", A transposed" : "")
                      << (accumulate ? ", accumulating" : ""));
            CHECK(worst < 1e-5);
          }
        }
      }
    }
  }
}

TEST_CASE("transpose: out (cols, rows) = in^T for sizes around the 8 x 8 tiles, from rows with a wider stride") {
  for (const std::size_t rows : {1, 7, 8, 9, 16, 33}) {
    for (const std::size_t cols : {1, 5, 8, 12, 32}) {
      const std::size_t ld = cols + 4;
      std::vector<float> in(rows * ld), out(rows * cols, -1.f);
      for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
      transpose(in.data(), rows, cols, ld, out.data());
      bool same = true;
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c = 0; c < cols; ++c) same = same && out[c * rows + r] == in[r * ld + c];
      }
      INFO(rows << " x " << cols);
      CHECK(same);
    }
  }
}
