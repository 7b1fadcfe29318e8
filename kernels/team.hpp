// A team of threads for a loop of small parallel steps (decoding one sentence: each step's
// products stream a few hundred kilobytes to a megabyte of weights, in microseconds). The other
// threads wait inside one parallel region, spinning, for the parts of the loops the calling
// thread hands them: a part costs a cache line each way, where a parallel region of its own costs
// libgomp's barriers (3-5 us on two cores of a virtual machine, as much as such a product gains).
#pragma once

#include <cstddef>
#include <functional>

namespace xgrad::kernels {

/// Runs f() on this thread while the other OpenMP threads (omp_get_max_threads() in all) wait in
/// one parallel region for the parts of team_for: inside f, parallel_for and the loops built on it
/// go over the team without a region of their own. Alone (one thread, more threads than
/// cores_available(), where a spinning team would wait for threads the system has descheduled,
/// already inside a parallel region, or inside another with_team), f() simply runs. An exception
/// from f, or from a part on any thread, ends the team and propagates from here. The waiting threads keep their cores busy:
/// for loops of small steps, not around work that needs the whole machine otherwise (oneDNN's
/// GEMMs, called inside the region, run on this thread alone).
void with_team(const std::function<void()>& f);

/// The cores this process may run on (its CPU affinity; 1 if the system does not say).
std::size_t cores_available();

/// The number of threads of the team this thread leads (inside with_team's f), 0 when it leads
/// none, or is running a part of team_for (a loop inside a part runs alone).
std::size_t team_size();

/// part(t, n) for t in [0, n), n = team_size(), part t on thread t of the team (0: this thread),
/// all done when it returns; part(0, 1) when team_size() is 0. An exception from any part
/// propagates (this thread's, else the first a helper's threw).
void team_for(const std::function<void(std::size_t, std::size_t)>& part);

}  // namespace xgrad::kernels
