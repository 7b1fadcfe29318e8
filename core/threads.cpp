#include <xgrad/core/threads.hpp>

#include <algorithm>
#include <atomic>

#include <omp.h>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad {

namespace {

/// The most threads asked for so far: the pool's threads, started or not.
std::atomic<int> most_threads{0};

}  // namespace

void set_num_threads(int threads) {
  if (threads < 1) throw Error(fmt::format("set_num_threads: expected at least 1 thread, got {}", threads));
  const int before = omp_get_max_threads();  // teams may have been this large
  omp_set_num_threads(threads);
  const int largest = std::max(before, threads);
  for (int most = most_threads.load(); largest > most && !most_threads.compare_exchange_weak(most, largest);) {
  }
}

int get_num_threads() { return omp_get_max_threads(); }

void on_each_thread(const std::function<void()>& f) {
  const int threads = std::max(most_threads.load(), omp_get_max_threads());
  // A team as large as the pool takes each of its threads once (threads not yet started start
  // here, from this thread).
#pragma omp parallel num_threads(threads)
  f();
}

}  // namespace xgrad
