// One thread pool for everything: xgrad's kernels and oneDNN's GEMMs both run on OpenMP (the
// same runtime), so the cores are never oversubscribed.
#pragma once

namespace xgrad {

/// Threads used by the kernels and GEMMs from now on (as torch::set_num_threads). The default is
/// OMP_NUM_THREADS if set, else every core.
void set_num_threads(int threads);
int get_num_threads();

}  // namespace xgrad
