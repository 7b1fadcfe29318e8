// Products of few rows (a decoding step's: one row per sequence or beam) split by columns over
// the threads, each thread one call of the GEMM library on its own block of C's columns. oneDNN's
// own split of so few rows over two threads gains little (docs/PERFORMANCE.md: its sgemm
// 1.1-1.25x on Zen 4, its bf16 matmul nothing at 32 rows on Zen 5, its int8 GEMM at 32 rows
// slower than one thread on the narrow products).
#pragma once

#include <algorithm>
#include <cstddef>

#include <omp.h>

namespace xgrad::kernels {

/// Products of up to kColumnSplitRows rows are split, in blocks of kColumnBlock columns.
constexpr std::size_t kColumnSplitRows = 128;
constexpr std::size_t kColumnBlock = 64;

/// For an M x N product with M <= kColumnSplitRows, N at least kColumnBlock per thread, called
/// outside a parallel region with more than one thread: calls part(n0, n1) on every thread of a
/// team, [n0, n1) that thread's columns of C (whole blocks, the last thread the rest), and
/// returns true. Otherwise calls nothing and returns false: the caller runs the whole product.
/// part must not throw (it runs inside the parallel region): it records a failure instead.
template <class Part>
bool split_columns(std::size_t M, std::size_t N, Part&& part) {
  const std::size_t threads = omp_in_parallel() ? 1 : static_cast<std::size_t>(omp_get_max_threads());
  if (threads < 2 || M > kColumnSplitRows || N < threads * kColumnBlock) return false;
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    // The team as it came (it may be smaller than asked for): its blocks cover every column.
    const auto team = static_cast<std::size_t>(omp_get_num_threads());
    const auto t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t per_thread = (N / team + kColumnBlock - 1) / kColumnBlock * kColumnBlock;
    const std::size_t n0 = std::min(N, t * per_thread), n1 = t + 1 == team ? N : std::min(N, n0 + per_thread);
    if (n1 > n0) part(n0, n1);
  }
  return true;
}

}  // namespace xgrad::kernels
