// One thread pool for everything: xgrad's kernels and oneDNN's GEMMs both run on OpenMP (the
// same runtime), so the cores are never oversubscribed.
#pragma once

#include <functional>

namespace xgrad {

/// Threads used by the kernels and GEMMs from now on (as torch::set_num_threads). The default is
/// OMP_NUM_THREADS if set, else every core.
void set_num_threads(int threads);
int get_num_threads();

/// Runs `f` (which must not throw) once on each thread of the pool, the calling thread included:
/// for what each thread keeps for itself, such as its signal mask. The pool is as large as the
/// most threads asked for so far (by set_num_threads or OMP_NUM_THREADS), which may be more than
/// get_num_threads().
void on_each_thread(const std::function<void()>& f);

}  // namespace xgrad
