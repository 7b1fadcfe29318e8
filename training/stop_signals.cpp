// StopSignals: SIGINT and SIGTERM blocked in the computing threads and taken by sigwait in a
// thread of their own; a handler for the other threads; a forked child gets the handling the
// process had before.
#include <xgrad/training/stop_signals.hpp>

#include <mutex>

#include <pthread.h>

#include <xgrad/core/error.hpp>
#include <xgrad/core/threads.hpp>

namespace xgrad::training {

namespace {

// One StopSignals at a time: its state is the process's.
std::atomic<bool> alive{false};
std::atomic<int> stop_signal{0};  // the first signal taken, or 0
static_assert(std::atomic<int>::is_always_lock_free, "read and written by a signal handler");
sigset_t signals;                 // SIGINT and SIGTERM, less those the process ignored when it started
struct sigaction previous_interrupt, previous_terminate;

// Each blocking thread's mask from before, to put back.
thread_local bool blocked_here = false;
thread_local sigset_t mask_before;

void block_here() {
  if (blocked_here) return;
  pthread_sigmask(SIG_BLOCK, &signals, &mask_before);
  blocked_here = true;
}

void unblock_here() {
  if (!blocked_here) return;
  pthread_sigmask(SIG_SETMASK, &mask_before, nullptr);
  blocked_here = false;
}

/// The first signal is a request; a second ends the process with the signal's own default
/// action. A handler's own signal is blocked until it returns and is delivered then; the
/// waiting thread unblocks it first.
void take(int signal) {
  int none = 0;
  if (stop_signal.compare_exchange_strong(none, signal)) return;
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

/// For the threads that do not block the signals: those that run no kernels (an MPI library's).
extern "C" void on_stop_signal(int signal) { take(signal); }

void restore_handling() {
  sigaction(SIGINT, &previous_interrupt, nullptr);
  sigaction(SIGTERM, &previous_terminate, nullptr);
}

/// A child forked while a StopSignals lives has no waiting thread: it gets the handling from
/// before, and a program it runs does not start with the signals blocked.
extern "C" void in_forked_child() {
  if (!alive) return;
  restore_handling();
  unblock_here();
  alive = false;
}

}  // namespace

StopSignals::StopSignals() {
  if (alive.exchange(true)) throw Error("StopSignals: another one is live; a process has one at a time");
  static std::once_flag fork_handler;
  std::call_once(fork_handler, [] { pthread_atfork(nullptr, nullptr, in_forked_child); });
  stop_signal = 0;
  // A signal ignored when the process started (SIGINT of a background job in a script) stays
  // ignored, as shells mean it to.
  sigemptyset(&signals);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const auto& [signal, previous] : {std::pair{SIGINT, &previous_interrupt}, {SIGTERM, &previous_terminate}}) {
    sigaction(signal, nullptr, previous);
    if (previous->sa_handler == SIG_IGN) continue;
    sigaddset(&signals, signal);
    sigaction(signal, &action, nullptr);
  }
  // This thread and the kernels' threads (on_each_thread takes both); threads started later, from
  // this thread or from the pool, inherit the mask.
  on_each_thread(block_here);
  if (sigisemptyset(&signals)) return;  // both ignored: nothing to wait for
  try {
    waiter_ = std::thread([this] { wait_for_signals(); });  // starts with the signals blocked
  } catch (...) {
    on_each_thread(unblock_here);
    restore_handling();
    alive = false;
    throw;
  }
}

StopSignals::~StopSignals() {
  if (waiter_.joinable()) {
    closing_ = true;
    // One of its own signals, sent to it alone, ends its sigwait; it sees closing_ and returns.
    pthread_kill(waiter_.native_handle(), sigismember(&signals, SIGTERM) ? SIGTERM : SIGINT);
    waiter_.join();
  }
  restore_handling();
  on_each_thread(unblock_here);  // threads started meanwhile keep the signals blocked: they go elsewhere
  alive = false;
}

int StopSignals::signal() const { return stop_signal.load(); }

void StopSignals::wait_for_signals() {
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // as inherited; sigwait is defined for blocked signals only
  for (;;) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (closing_) return;
    if (stop_signal.load() != 0) pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);  // the second: take() ends the process
    take(signal);
  }
}

}  // namespace xgrad::training
