// parallel_for, parallel_for_with and parallel_rows: every index once; over the threads only when
// the work asks for it and more than one thread is allowed; otherwise in order on the calling
// thread, outside any parallel region (not a region whose `if` is false, which libgomp still makes).
#include <doctest/doctest.h>

#include <atomic>
#include <vector>

#include <omp.h>

#include <xgrad/core/threads.hpp>
#include <xgrad/kernels/parallel.hpp>

using namespace xgrad::kernels;

namespace {

/// How the loop ran: the indices in the order seen (when serial), how many times each was seen,
/// and whether any index ran inside a parallel region (active or not).
struct Seen {
  std::vector<std::size_t> order;
  std::vector<std::atomic<int>> count;
  std::atomic<bool> in_region{false};
  explicit Seen(std::size_t n) : count(n) {}
  void visit(std::size_t i) {
    ++count[i];
    if (omp_get_level() > 0) in_region = true;  // inside any region, one with a false `if` too
    else order.push_back(i);
  }
  bool each_once() const {
    for (const auto& c : count) {
      if (c != 1) return false;
    }
    return true;
  }
};

std::vector<std::size_t> iota(std::size_t n) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

TEST_CASE("parallel_for: serial work stays out of any parallel region, in order") {
  xgrad::set_num_threads(2);
  Seen seen(37);
  parallel_for(37, false, [&](std::size_t i) { seen.visit(i); });
  CHECK(seen.each_once());
  CHECK_FALSE(seen.in_region);
  CHECK(seen.order == iota(37));

  Seen one(1);  // a single index is never worth a region
  parallel_for(1, true, [&](std::size_t i) { one.visit(i); });
  CHECK(one.each_once());
  CHECK_FALSE(one.in_region);
}

TEST_CASE("parallel_for: with one thread allowed, no region even when the work is large") {
  xgrad::set_num_threads(1);
  Seen seen(64);
  parallel_for(64, true, [&](std::size_t i) { seen.visit(i); });
  CHECK(seen.each_once());
  CHECK_FALSE(seen.in_region);
  CHECK_FALSE(use_threads(true));
  xgrad::set_num_threads(2);
}

TEST_CASE("parallel_for: large work goes over the threads, each index once") {
  xgrad::set_num_threads(2);
  CHECK(use_threads(true));
  CHECK_FALSE(use_threads(false));
  Seen seen(1000);
  parallel_for(1000, true, [&](std::size_t i) { seen.visit(i); });
  CHECK(seen.each_once());
  CHECK(seen.in_region);
}

TEST_CASE("parallel_for: called inside a parallel region, no nested region") {
  xgrad::set_num_threads(2);
  std::atomic<int> nested{0}, visits{0}, team{0};
#pragma omp parallel
  {
    if (omp_get_thread_num() == 0) team = omp_get_num_threads();
    parallel_for(1000, true, [&](std::size_t) {
      ++visits;
      if (omp_get_level() > 1) ++nested;
    });
  }
  CHECK(visits == 1000 * team);  // each thread of the outer team ran the whole loop
  CHECK(nested == 0);
}

TEST_CASE("parallel_for_with: one local per thread, passed to each index") {
  xgrad::set_num_threads(2);
  for (const bool parallel : {false, true}) {
    CAPTURE(parallel);
    std::atomic<int> made{0};
    Seen seen(200);
    std::vector<int> owner(200, -1);  // which thread's local saw each index
    parallel_for_with(
        200, parallel, [&] { return made++; },
        [&](std::size_t i, int& local) {
          seen.visit(i);
          owner[i] = local;
        });
    CHECK(seen.each_once());
    CHECK(seen.in_region == parallel);
    CHECK(made >= 1);
    CHECK(made <= (parallel ? 2 : 1));
    for (const int o : owner) CHECK((o >= 0 && o < made));
  }
}

TEST_CASE("parallel_rows: a region only from kParallelWork elements") {
  xgrad::set_num_threads(2);
  Seen small(8);
  parallel_rows(8, kParallelWork / 8 - 1, [&](std::size_t r) { small.visit(r); });
  CHECK(small.each_once());
  CHECK_FALSE(small.in_region);
  Seen large(8);
  parallel_rows(8, kParallelWork / 8, [&](std::size_t r) { large.visit(r); });
  CHECK(large.each_once());
  CHECK(large.in_region);
}
