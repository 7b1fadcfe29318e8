// Parallelism over rows and blocks for the kernels: one OpenMP pool, woken only when the work
// pays for it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <omp.h>

#include <xgrad/kernels/team.hpp>

namespace xgrad::kernels {

/// Work (in elements) below which a kernel stays on one thread: a parallel region costs a few
/// microseconds, about what one core needs for this many elements.
constexpr std::size_t kParallelWork = 32768;

/// Whether a loop goes over the OpenMP threads: its work pays for a parallel region
/// (`worth_it`), more than one thread is allowed, and the caller is not already in a parallel
/// region (a nested one would run on one thread). The kernels branch on this rather than give
/// `#pragma omp parallel` an `if` clause: libgomp makes a team of one even when the clause is
/// false, and ends it with a system call (a futex wake, over a microsecond on a virtual machine),
/// which a decoding step would otherwise pay a dozen times.
inline bool use_threads(bool worth_it) { return worth_it && omp_get_max_threads() > 1 && !omp_in_parallel(); }

/// Runs body(i, local) for i in [0, n), local = make_local() made once on each thread of the
/// region (what the thread keeps for itself: its scratch buffers): over the OpenMP threads (a
/// static schedule) when use_threads(parallel), or over the team this thread leads (with_team,
/// kernels/team.hpp) when `parallel`; else in order on this thread, with no parallel region and
/// one local.
template <class MakeLocal, class Body>
void parallel_for_with(std::size_t n, bool parallel, MakeLocal&& make_local, Body&& body) {
  const auto count = static_cast<std::int64_t>(n);
  if (parallel && n > 1 && team_size() > 1) {  // inside with_team: the team's threads, no region
    team_for([&](std::size_t t, std::size_t threads) {
      const std::size_t begin = n * t / threads, end = n * (t + 1) / threads;
      if (begin == end) return;
      auto local = make_local();
      for (std::size_t i = begin; i < end; ++i) body(i, local);
    });
    return;
  }
  if (!use_threads(parallel && n > 1)) {
    auto local = make_local();
    for (std::int64_t i = 0; i < count; ++i) body(static_cast<std::size_t>(i), local);
    return;
  }
#pragma omp parallel
  {
    auto local = make_local();
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < count; ++i) body(static_cast<std::size_t>(i), local);
  }
}

/// parallel_for_with without a local: body(i).
template <class Body>
void parallel_for(std::size_t n, bool parallel, Body&& body) {
  parallel_for_with(n, parallel, [] { return 0; }, [&](std::size_t i, int&) { body(i); });
}

/// Runs body(r) for r in [0, rows), over the OpenMP threads when rows * work_per_row is large.
template <class Body>
void parallel_rows(std::size_t rows, std::size_t work_per_row, Body&& body) {
  parallel_for(rows, rows * work_per_row >= kParallelWork, std::forward<Body>(body));
}

/// Runs body(begin, end) over blocks of kBlockElements of [0, n), over the OpenMP threads when
/// use_threads(parallel): for elementwise loops.
constexpr std::size_t kBlockElements = 16384;
template <class Body>
void parallel_blocks(std::size_t n, bool parallel, Body&& body) {
  const std::size_t blocks = (n + kBlockElements - 1) / kBlockElements;
  parallel_for(blocks, parallel,
               [&](std::size_t b) { body(b * kBlockElements, std::min(n, (b + 1) * kBlockElements)); });
}

/// parallel_blocks over the threads when the blocks hold kParallelWork elements or more.
template <class Body>
void parallel_blocks(std::size_t n, Body&& body) {
  const std::size_t blocks = (n + kBlockElements - 1) / kBlockElements;
  parallel_blocks(n, blocks * kBlockElements >= kParallelWork, std::forward<Body>(body));
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
