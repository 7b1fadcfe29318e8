// kernels::gemm on oneDNN's dnnl_sgemm (row-major, like the rest of xgrad); under bf16 autocast,
// kernels::gemm_bf16 (gemm_bf16.cpp).
#include <xgrad/kernels/gemm.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include <dnnl.h>
#include <fmt/format.h>
#include <omp.h>

#include <xgrad/core/error.hpp>
#include <xgrad/core/precision.hpp>
#include <xgrad/kernels/column_split.hpp>
#include <xgrad/kernels/parallel.hpp>

namespace xgrad::kernels {

namespace {

/// oneDNN's sgemm packs an operand whose rows run along K (A transposed, B not) by reading down
/// its columns. When that operand's row stride is a multiple of a power of two, the rows of such
/// a column fall into few L1 cache sets and the packing thrashes. Measured on AVX2
/// (docs/PERFORMANCE.md): dW = dy^T x of a 1024-wide layer, A's stride 4 KB, at half speed (35
/// against 68 GFLOP/s on one core); dx = dy W with W's rows 1 KB apart 10-15% slower (66 against
/// 76). oneDNN's AVX-512 kernels thrash at 4 KB strides only (Zen 5: the same dW 171-181 against
/// 215-217 padded; B 4 KB apart 331 against 420 on two cores; at 1 KB no gain, so the copy was a
/// loss, up to a third of a 256 x 256 x 1024 dW on two cores). Such an operand is first copied,
/// row by row, with its stride padded by one cache line; the copy reads and writes each element
/// once, on all the threads.
constexpr std::size_t kAliasingStrideA = 1024;  // floats: 4 KB, for A transposed
constexpr std::size_t kPadding = 16;            // floats: one 64-byte cache line

/// B's stride that thrashes, in floats: 1 KB with oneDNN's AVX2 kernels, 4 KB with its AVX-512 ones.
std::size_t aliasing_stride_b() {
  static const std::size_t stride = [] {
    const auto avx512 = static_cast<unsigned>(dnnl_cpu_isa_avx512_core);
    return (static_cast<unsigned>(dnnl_get_effective_cpu_isa()) & avx512) == avx512 ? 1024u : 256u;
  }();
  return stride;
}

bool aliases(bool rows_along_k, std::size_t ld, std::size_t K, std::size_t stride) {
  return rows_along_k && K >= 64 && ld % stride == 0;
}

/// The operand's rows x cols block copied with a padded stride into a buffer of this thread's
/// (kept between calls: no allocation once the largest shape has been seen).
const float* padded_copy(const float* X, std::size_t rows, std::size_t cols, std::size_t ld, std::size_t& padded_ld,
                         std::vector<float>& buffer) {
  padded_ld = cols + kPadding;
  if (buffer.size() < rows * padded_ld) buffer.resize(rows * padded_ld);
  float* to = buffer.data();
  parallel_rows(rows, cols, [&](std::size_t r) { std::memcpy(to + r * padded_ld, X + r * ld, cols * sizeof(float)); });
  return to;
}

/// product(n0, n), one oneDNN call on C's columns [n0, n0 + n): on each thread's block of columns
/// when split_columns splits the M x N product, else once on all N. The first failing status of
/// the calls, or dnnl_success.
template <class Product>
dnnl_status_t by_columns(std::size_t M, std::size_t N, Product&& product) {
  dnnl_status_t status = dnnl_success;
  const bool split = split_columns(M, N, [&](std::size_t n0, std::size_t n1) {
    const dnnl_status_t mine = product(n0, n1 - n0);
    if (mine != dnnl_success) {
#pragma omp critical(xgrad_gemm_status)
      status = mine;
    }
  });
  return split ? status : product(0, N);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
          std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) {
  if (autocast_precision() == Precision::bf16) gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else gemm_fp32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_fp32(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
               std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: C = beta C
    for (std::size_t i = 0; i < M; ++i) {
      float* row = C + i * ldc;
      if (beta == 0.f) std::fill(row, row + N, 0.f);
      else if (beta != 1.f) std::for_each(row, row + N, [beta](float& c) { c *= beta; });
    }
    return;
  }
  thread_local std::vector<float> a_buffer, b_buffer;
  if (aliases(trans_a, lda, K, kAliasingStrideA)) A = padded_copy(A, K, M, lda, lda, a_buffer);
  if (aliases(!trans_b, ldb, K, aliasing_stride_b())) B = padded_copy(B, K, N, ldb, ldb, b_buffer);
  const auto dim = [](std::size_t n) { return static_cast<dnnl_dim_t>(n); };
  const auto sgemm = [&](std::size_t n0, std::size_t n) {  // C's columns [n0, n0 + n)
    const float* b = B + (trans_b ? n0 * ldb : n0);           // op(B)'s columns: rows of B^T, columns of B
    return dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', dim(M), dim(n), dim(K), alpha, A, dim(lda), b,
                      dim(ldb), beta, C + n0, dim(ldc));
  };
  // Few rows: each thread its own block of C's columns (measured on 2 cores, Zen 4, weights from
  // L3: 32 x N x 256 or 1024 1.5-2.6 times oneDNN's own 2-thread split; 128 rows 1.1-1.6 times).
  const dnnl_status_t status = by_columns(M, N, sgemm);
  if (status != dnnl_success) {
    throw Error(fmt::format("gemm: oneDNN's sgemm failed (status {}) for op(A) ({}, {}){} x op(B) ({}, {}){} with "
                            "lda {}, ldb {}, ldc {}",
                            static_cast<int>(status), M, K, trans_a ? " transposed" : "", K, N,
                            trans_b ? " transposed" : "", lda, ldb, ldc));
  }
}

void gemm_u8s8s32(std::size_t M, std::size_t N, std::size_t K, const std::uint8_t* A, const std::int8_t* B,
                  std::int32_t* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(C, C + M * N, 0);
    return;
  }
  const auto dim = [](std::size_t n) { return static_cast<dnnl_dim_t>(n); };
  const std::int32_t no_offset = 0;
  // Few rows split by columns, as fp32's: measured on 2 cores (Zen 5, VNNI), at 32 rows oneDNN's
  // own 2-thread split of a 256-column product was slower than one thread, and a decoding step's
  // int8 products took 10-15% less time split by columns (docs/PERFORMANCE.md).
  const auto u8s8s32 = [&](std::size_t n0, std::size_t n) {
    return dnnl_gemm_u8s8s32('N', 'T', 'F', dim(M), dim(n), dim(K), 1.f, A, dim(K), 0, B + n0 * K, dim(K), 0, 0.f,
                             C + n0, dim(N), &no_offset);
  };
  const dnnl_status_t status = by_columns(M, N, u8s8s32);
  if (status != dnnl_success) {
    throw Error(fmt::format("gemm_u8s8s32: oneDNN's int8 gemm failed (status {}) for A ({}, {}) x B^T, B ({}, {})",
                            static_cast<int>(status), M, K, N, K));
  }
}

}  // namespace xgrad::kernels
