// Parallelism over rows and blocks for the kernels: one OpenMP pool, woken only when the work
// pays for it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <omp.h>

namespace xgrad::kernels {

/// Work (in elements) below which a kernel stays on one thread: a parallel region costs a few
/// microseconds, about what one core needs for this many elements.
constexpr std::size_t kParallelWork = 32768;

/// Runs body(r) for r in [0, rows), over the OpenMP threads when rows * work_per_row is large.
template <class Body>
void parallel_rows(std::size_t rows, std::size_t work_per_row, Body&& body) {
  const auto count = static_cast<std::int64_t>(rows);
  if (rows < 2 || rows * work_per_row < kParallelWork || omp_get_max_threads() < 2) {
    for (std::int64_t r = 0; r < count; ++r) body(static_cast<std::size_t>(r));
    return;
  }
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < count; ++r) body(static_cast<std::size_t>(r));
}

/// Runs body(begin, end) over blocks of [0, n), over the OpenMP threads when n is large: for
/// elementwise loops.
template <class Body>
void parallel_blocks(std::size_t n, Body&& body) {
  constexpr std::size_t kBlock = 16384;
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  parallel_rows(blocks, kBlock, [&](std::size_t b) { body(b * kBlock, std::min(n, (b + 1) * kBlock)); });
}

}  // namespace xgrad::kernels
