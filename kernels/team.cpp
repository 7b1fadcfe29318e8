// with_team and team_for: a generation counter the leader bumps to post a job (or the end), a
// count of the helpers done with it, each on its own cache line; helpers spin on the first, the
// leader on the second, yielding the core once a wait grows long.
#include <xgrad/kernels/team.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>

#include <immintrin.h>
#include <omp.h>
#include <sched.h>

namespace xgrad::kernels {

namespace {

struct Team {
  alignas(64) std::atomic<std::uint64_t> generation{0};  // bumped by the leader for each job and for the end
  alignas(64) std::atomic<std::size_t> finished{0};      // helpers done with the current job
  alignas(64) const std::function<void(std::size_t, std::size_t)>* job = nullptr;
  bool end = false;
  bool busy = false;  // the leader is running a part: loops inside it run alone
  std::size_t size = 1;
  std::mutex error_mutex;
  std::exception_ptr error;  // the first a helper's part threw

  void keep_error() {
    const std::lock_guard<std::mutex> lock(error_mutex);
    if (!error) error = std::current_exception();
  }
};

thread_local Team* led = nullptr;  // the team this thread leads

/// Spins until ready(), pausing; after a few thousand rounds it yields the core at each, so that
/// more threads than cores (or a busy machine) wait for a descheduled thread a time slice, not
/// several.
template <class Ready>
void wait_until(Ready&& ready) {
  for (unsigned round = 0; !ready(); ++round) {
    if (round < 4096) _mm_pause();
    else std::this_thread::yield();
  }
}

/// A helper: runs its part of each job posted, until the end.
void help(Team& team, std::size_t t) {
  std::uint64_t seen = 0;
  for (;;) {
    std::uint64_t posted = seen;
    wait_until([&] { return (posted = team.generation.load(std::memory_order_acquire)) != seen; });
    seen = posted;
    if (team.end) return;
    try {
      (*team.job)(t, team.size);
    } catch (...) {
      team.keep_error();
    }
    team.finished.fetch_add(1, std::memory_order_release);
  }
}

}  // namespace

std::size_t cores_available() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? static_cast<std::size_t>(CPU_COUNT(&set)) : 1;
}

void with_team(const std::function<void()>& f) {
  const auto threads = static_cast<std::size_t>(omp_get_max_threads());
  if (led || omp_in_parallel() || threads < 2 || threads > cores_available()) {
    f();
    return;
  }
  Team team;
  std::exception_ptr error;
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    const auto t = static_cast<std::size_t>(omp_get_thread_num());
    if (t == 0) {
      team.size = static_cast<std::size_t>(omp_get_num_threads());  // before any job is posted
      led = &team;
      try {
        f();
      } catch (...) {
        error = std::current_exception();
      }
      led = nullptr;
      team.end = true;
      team.generation.fetch_add(1, std::memory_order_release);
    } else {
      help(team, t);
    }
  }
  if (error) std::rethrow_exception(error);
}

std::size_t team_size() { return led && !led->busy ? led->size : 0; }

void team_for(const std::function<void(std::size_t, std::size_t)>& part) {
  if (team_size() == 0) {
    part(0, 1);
    return;
  }
  Team& team = *led;
  team.busy = true;
  team.finished.store(0, std::memory_order_relaxed);
  team.job = &part;
  team.generation.fetch_add(1, std::memory_order_release);
  std::exception_ptr error;
  try {
    part(0, team.size);
  } catch (...) {
    error = std::current_exception();
  }
  wait_until([&] { return team.finished.load(std::memory_order_acquire) == team.size - 1; });
  team.busy = false;
  if (!error && team.error) error = team.error;
  team.error = nullptr;
  if (error) std::rethrow_exception(error);
}

}  // namespace xgrad::kernels
