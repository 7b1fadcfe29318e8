// Ctrl-C and SIGTERM as a request to stop at the end of a step, taken by a thread of their own,
// so that no signal handler ever runs on a thread that computes.
#pragma once

#include <atomic>
#include <csignal>
#include <thread>

namespace xgrad::training {

/// While it lives, SIGINT and SIGTERM (Ctrl-C, `kill`, a job scheduler's stop) ask the process
/// to stop: the first sets requested(), which a training loop reads between steps to save and
/// exit; a second ends the process as the signal would have without it.
///
///     xgrad::training::StopSignals stop;  // where the loop starts: before it, Ctrl-C kills
///     for (...) { step(); if (stop.requested()) { save(); return 130; } }
///
/// Why not a plain handler: a handler runs on the stack of the thread the signal interrupts,
/// just below its stack pointer. oneDNN 2.x's JIT GEMM kernels point the stack pointer into a
/// heap buffer while they run, so a handler that interrupts one writes its frame over the heap
/// and the process aborts later, in free() (oneDNN issue 4845, fixed after the 2.6 that Debian
/// bookworm ships).
/// Here both signals are blocked in the thread that creates the object and in the kernels'
/// threads (those running, on_each_thread, and those started later, which inherit the mask), and
/// one thread of their own waits for them with sigwait. Other threads (an MPI library's) keep
/// them unblocked and get a handler that does the same; they run no kernels.
///
/// One at a time per process; create and destroy it on the same thread. A child process forked
/// meanwhile gets the signals' handling from before (and so does a program it runs).
class StopSignals {
 public:
  /// Blocks SIGINT and SIGTERM in this thread and starts the thread that takes them. Throws
  /// xgrad::Error if another StopSignals lives.
  StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  /// Stops the waiting thread, restores the signals' previous handling and this thread's mask.
  ~StopSignals();

  /// Whether a stop was asked for.
  bool requested() const { return signal() != 0; }
  /// The signal that asked for it (SIGINT or SIGTERM), or 0.
  int signal() const;

 private:
  void wait_for_signals();

  std::atomic<bool> closing_{false};
  std::thread waiter_;
};

}  // namespace xgrad::training
