// training::StopSignals: SIGINT and SIGTERM as a request to stop, taken by a thread of its own
// and blocked in every thread that computes (the threads of the kernels included); a second
// signal ends the process; a signal ignored at the start stays ignored; a forked child gets the
// handling from before. Every case runs in a child process of its own: the kernels' thread pool
// does not survive a fork.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <string>
#include <thread>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

bool blocked_here(int signal) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal) == 1;
}

/// Waits up to five seconds for `done`.
template <class Done>
bool within_seconds(Done done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// Runs `body` in a child process; returns its wait status. The child's exit code is body's
/// result (0: as expected).
template <class Body>
int in_child(Body body) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) _exit(body());
  int status = 0;
  waitpid(child, &status, 0);
  return status;
}

/// The blocked-signal mask of each thread of this process, from /proc.
std::vector<unsigned long long> thread_masks() {
  std::vector<unsigned long long> masks;
  DIR* tasks = opendir("/proc/self/task");
  REQUIRE(tasks != nullptr);
  while (const dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream status(std::string("/proc/self/task/") + entry->d_name + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("SigBlk:", 0) == 0) masks.push_back(std::stoull(line.substr(7), nullptr, 16));
    }
  }
  closedir(tasks);
  return masks;
}

}  // namespace

TEST_CASE("StopSignals: a signal to the process is a request; the mask and handling come back after") {
  const int status = in_child([] {
    if (blocked_here(SIGINT)) return 3;
    struct sigaction before {};
    sigaction(SIGINT, nullptr, &before);  // the test runner's own
    {
      training::StopSignals stop;
      if (!blocked_here(SIGINT) || !blocked_here(SIGTERM)) return 4;
      if (stop.requested()) return 5;
      // A thread started now inherits the mask: a handler can never interrupt it.
      bool inherited = false;
      std::thread([&] { inherited = blocked_here(SIGINT) && blocked_here(SIGTERM); }).join();
      if (!inherited) return 6;
      try {
        training::StopSignals second;
        return 7;
      } catch (const Error& e) {
        if (std::string(e.what()).find("another one is live") == std::string::npos) return 8;
      }
      kill(getpid(), SIGTERM);
      if (!within_seconds([&] { return stop.requested(); })) return 9;
      if (stop.signal() != SIGTERM) return 10;
    }
    if (blocked_here(SIGINT) || blocked_here(SIGTERM)) return 11;
    struct sigaction now {};
    sigaction(SIGINT, nullptr, &now);
    if (now.sa_handler != before.sa_handler) return 12;
    training::StopSignals again;  // a new one starts with no request
    return again.requested() ? 13 : 0;
  });
  REQUIRE(WIFEXITED(status));
  const int step_failed = WEXITSTATUS(status);  // which of the child's checks, or 0
  CHECK(step_failed == 0);
}

TEST_CASE("StopSignals: the kernels' threads block both while it lives, started before it or after") {
  const int status = in_child([] {
    const unsigned long long both = (1ull << (SIGINT - 1)) | (1ull << (SIGTERM - 1));
    const auto count_blocking = [&] {
      std::size_t blocking = 0;
      for (const unsigned long long mask : thread_masks()) blocking += (mask & both) == both;
      return blocking;
    };
    // Products big enough to run on every thread: the kernels' pool starts, or grows.
    const auto product = [] {
      const Tensor a = randn({256, 256}), b = randn({256, 256});
      return std::isfinite(sum(matmul(a, b)).item());
    };
    set_num_threads(2);
    if (!product()) return 3;
    const std::size_t threads_before = thread_masks().size();  // this one and the pool's
    if (threads_before < 2) return 4;
    if (count_blocking() != 0) return 5;
    {
      training::StopSignals stop;
      // The waiting thread shows the two unblocked once it waits in sigwait (it starts with
      // every signal blocked); every other thread, the pool's included, blocks them.
      if (!within_seconds([&] { return count_blocking() == threads_before; })) return 6;
      set_num_threads(3);  // a thread more, started now
      if (!product()) return 7;
      if (count_blocking() != threads_before + 1) return 8;
      if (thread_masks().size() != threads_before + 2) return 9;
    }
    // The threads that ran before have their masks back; the one started meanwhile keeps the
    // signals blocked (they go to the others).
    if (count_blocking() != 1) return 10;
    return 0;
  });
  REQUIRE(WIFEXITED(status));
  const int step_failed = WEXITSTATUS(status);  // which of the child's checks, or 0
  CHECK(step_failed == 0);
}

TEST_CASE("StopSignals: a second signal ends the process as the signal does") {
  const int status = in_child([] {
    training::StopSignals stop;
    kill(getpid(), SIGINT);
    if (!within_seconds([&] { return stop.requested(); })) return 3;
    kill(getpid(), SIGINT);
    std::this_thread::sleep_for(std::chrono::seconds(10));
    return 4;  // not ended
  });
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
}

TEST_CASE("StopSignals: a signal the process ignored at its start stays ignored") {
  const int status = in_child([] {
    std::signal(SIGINT, SIG_IGN);  // as a shell starts a background job
    training::StopSignals stop;
    if (blocked_here(SIGINT)) return 3;
    kill(getpid(), SIGINT);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (stop.requested()) return 4;
    kill(getpid(), SIGTERM);  // still a request
    if (!within_seconds([&] { return stop.requested(); })) return 5;
    return stop.signal() == SIGTERM ? 0 : 6;
  });
  REQUIRE(WIFEXITED(status));
  const int step_failed = WEXITSTATUS(status);  // which of the child's checks, or 0
  CHECK(step_failed == 0);
}

TEST_CASE("StopSignals: a child forked while it lives gets the signals' handling from before") {
  const int status = in_child([] {
    struct sigaction before {};
    sigaction(SIGTERM, nullptr, &before);
    training::StopSignals stop;
    const int child = in_child([&] {
      if (blocked_here(SIGINT) || blocked_here(SIGTERM)) return 3;  // a program it ran would start so
      struct sigaction now {};
      sigaction(SIGTERM, nullptr, &now);
      return now.sa_handler == before.sa_handler ? 0 : 4;
    });
    if (!WIFEXITED(child)) return 5;
    if (WEXITSTATUS(child) != 0) return WEXITSTATUS(child);
    return blocked_here(SIGINT) ? 0 : 6;  // this process's still in force
  });
  REQUIRE(WIFEXITED(status));
  const int step_failed = WEXITSTATUS(status);  // which of the child's checks, or 0
  CHECK(step_failed == 0);
}
