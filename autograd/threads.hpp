// One thread pool for everything: xgrad's kernels (OpenMP) and BLAS (the OpenMP build of
// OpenBLAS) share it, so the cores are never oversubscribed.
#pragma once

namespace xgrad {

/// Threads used by kernels and BLAS from now on (as torch::set_num_threads). The default is
/// OMP_NUM_THREADS if set, else every core.
void set_num_threads(int threads);
int get_num_threads();

/// "openmp", "pthread" or "sequential": how the linked OpenBLAS runs its own threads.
const char* blas_threading();

}  // namespace xgrad
