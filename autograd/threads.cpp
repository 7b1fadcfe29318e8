#include <xgrad/autograd/threads.hpp>

#include <omp.h>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_parallel(void);
}

namespace xgrad {

void set_num_threads(int threads) {
  if (threads < 1) throw Error(fmt::format("set_num_threads: expected at least 1 thread, got {}", threads));
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int get_num_threads() { return omp_get_max_threads(); }

const char* blas_threading() {
  switch (openblas_get_parallel()) {
    case 0: return "sequential";
    case 1: return "pthread";
    case 2: return "openmp";
    default: return "unknown";
  }
}

}  // namespace xgrad
