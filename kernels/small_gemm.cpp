// small_gemm: kRows rows of C by 2 vectors of columns held in registers while K runs (6 x 2 on
// 16 vector registers, 8 x 2 on 32), each row of B loaded once per kRows rows of C, each element
// of A broadcast once per 2 vectors.
#include <xgrad/kernels/small_gemm.hpp>

#include <algorithm>
#include <cstring>

#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

namespace {

using vec::load;
using vec::store;
using vec::Vec;
using vec::W;
/// Rows of C held in registers: kRows x 2 accumulators, 2 rows of B and a broadcast fit.
constexpr std::size_t kRows = vec::kRegisters == 32 ? 8 : 6;

/// C[0:R, 0:V*W] (+)= alpha A[0:R, :] B[:, 0:V*W] for R rows of C and V vectors of columns.
template <std::size_t R, std::size_t V>
[[gnu::always_inline]] inline void block(std::size_t K, float alpha, const float* A, std::size_t a_row, std::size_t a_col, const float* B,
                  std::size_t ldb, bool accumulate, float* C, std::size_t ldc) {
  Vec c[R][V];
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t v = 0; v < V; ++v) c[r][v] = Vec{};
  }
  for (std::size_t k = 0; k < K; ++k) {
    Vec b[V];
    for (std::size_t v = 0; v < V; ++v) {
      b[v] = load(B + k * ldb + v * W);
      if (R > 1) vec::keep_in_register(b[v]);  // read by R multiply-adds: one load
    }
    for (std::size_t r = 0; r < R; ++r) {
      Vec a = Vec{} + A[r * a_row + k * a_col];  // broadcast
      if (V > 1) vec::keep_in_register(a);
      for (std::size_t v = 0; v < V; ++v) c[r][v] += a * b[v];
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t v = 0; v < V; ++v) {
      float* out = C + r * ldc + v * W;
      store(out, accumulate ? load(out) + alpha * c[r][v] : alpha * c[r][v]);
    }
  }
}

/// The same for R rows and the last columns [n0, N) (fewer than W), one at a time.
template <std::size_t R>
inline void block_tail(std::size_t n0, std::size_t N, std::size_t K, float alpha, const float* A, std::size_t a_row,
                       std::size_t a_col, const float* B, std::size_t ldb, bool accumulate, float* C, std::size_t ldc) {
  for (std::size_t j = n0; j < N; ++j) {
    float c[R] = {};
    for (std::size_t k = 0; k < K; ++k) {
      const float b = B[k * ldb + j];
      for (std::size_t r = 0; r < R; ++r) c[r] += A[r * a_row + k * a_col] * b;
    }
    for (std::size_t r = 0; r < R; ++r) C[r * ldc + j] = (accumulate ? C[r * ldc + j] : 0.f) + alpha * c[r];
  }
}

/// R rows of C, every column: two vectors at a time, then one, then the tail.
template <std::size_t R>
void rows(std::size_t N, std::size_t K, float alpha, const float* A, std::size_t a_row, std::size_t a_col,
          const float* B, std::size_t ldb, bool accumulate, float* C, std::size_t ldc) {
  std::size_t n = 0;
  for (; n + 2 * W <= N; n += 2 * W) block<R, 2>(K, alpha, A, a_row, a_col, B + n, ldb, accumulate, C + n, ldc);
  for (; n + W <= N; n += W) block<R, 1>(K, alpha, A, a_row, a_col, B + n, ldb, accumulate, C + n, ldc);
  if (n < N) block_tail<R>(n, N, K, alpha, A, a_row, a_col, B, ldb, accumulate, C, ldc);
}

}  // namespace

void small_gemm(std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A, std::size_t a_row,
                std::size_t a_col, const float* B, std::size_t ldb, bool accumulate, float* C, std::size_t ldc) {
  std::size_t i = 0;
  for (; i + kRows <= M; i += kRows) {
    rows<kRows>(N, K, alpha, A + i * a_row, a_row, a_col, B, ldb, accumulate, C + i * ldc, ldc);
  }
  for (; i + 2 <= M; i += 2) rows<2>(N, K, alpha, A + i * a_row, a_row, a_col, B, ldb, accumulate, C + i * ldc, ldc);
  if (i < M) rows<1>(N, K, alpha, A + i * a_row, a_row, a_col, B, ldb, accumulate, C + i * ldc, ldc);
}

namespace {

typedef float Vec8 __attribute__((vector_size(8 * sizeof(float))));

/// out[c * ldo + r] = in[r * ld + c] for an 8 x 8 tile, in three rounds of shuffles.
[[gnu::always_inline]] inline void transpose_8x8(const float* in, std::size_t ld, float* out, std::size_t ldo) {
  Vec8 r[8];
  for (int i = 0; i < 8; ++i) std::memcpy(&r[i], in + i * ld, sizeof(Vec8));
  Vec8 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {  // interleave pairs of rows
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {  // then pairs of pairs
    u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int i = 0; i < 4; ++i) {  // then the two halves
    const Vec8 low = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    const Vec8 high = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    std::memcpy(out + i * ldo, &low, sizeof(Vec8));
    std::memcpy(out + (i + 4) * ldo, &high, sizeof(Vec8));
  }
}

}  // namespace

void transpose(const float* in, std::size_t rows, std::size_t cols, std::size_t ld, float* out) {
  const std::size_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (std::size_t r = 0; r < rows8; r += 8) {
    for (std::size_t c = 0; c < cols8; c += 8) transpose_8x8(in + r * ld + c, ld, out + c * rows + r, rows);
  }
  for (std::size_t r = 0; r < rows; ++r) {  // the edges: columns past cols8, then rows past rows8
    for (std::size_t c = cols8; c < cols; ++c) out[c * rows + r] = in[r * ld + c];
  }
  for (std::size_t r = rows8; r < rows; ++r) {
    for (std::size_t c = 0; c < cols8; ++c) out[c * rows + r] = in[r * ld + c];
  }
}

}  // namespace xgrad::kernels
