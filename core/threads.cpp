#include <xgrad/core/threads.hpp>

#include <omp.h>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad {

void set_num_threads(int threads) {
  if (threads < 1) throw Error(fmt::format("set_num_threads: expected at least 1 thread, got {}", threads));
  omp_set_num_threads(threads);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace xgrad
