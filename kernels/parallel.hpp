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

/// Runs body(first, count) for runs of `count` contiguous rows of `length` elements, about
/// kRunElements elements a run, over the OpenMP threads when there is enough work: for row kernels
/// that carry something from one row to the next (a pipeline over the rows).
constexpr std::size_t kRunElements = 16384;
template <class Body>
void parallel_row_runs(std::size_t rows, std::size_t length, Body&& body) {
  const std::size_t run = std::max<std::size_t>(1, kRunElements / std::max<std::size_t>(length, 1));
  parallel_rows((rows + run - 1) / run, run * length,
                [&](std::size_t r) { body(r * run, std::min(run, rows - r * run)); });
}

}  // namespace xgrad::kernels
