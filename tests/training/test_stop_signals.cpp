// training::StopSignals: SIGINT and SIGTERM as a request to stop, taken by a thread of its own
// and blocked in every thread that computes (the threads of the kernels included); a second
// signal ends the process; a signal ignored at the start stays ignored; a forked child gets the
// handling from before. Cases that change a process's signals or threads run in a child process.
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
  REQUIRE_FALSE(blocked_here(SIGINT));
  struct sigaction before {};
  sigaction(SIGINT, nullptr, &before);  // the test runner's own
  {
    training::StopSignals stop;
    CHECK(blocked_here(SIGINT));
    CHECK(blocked_here(SIGTERM));
    CHECK_FALSE(stop.requested());
    // A thread started now inherits the mask: a handler can never interrupt it.
    bool inherited = false;
    std::thread([&] { inherited = blocked_here(SIGINT) && blocked_here(SIGTERM); }).join();
    CHECK(inherited);
    CHECK_THROWS_WITH_AS(training::StopSignals(), doctest::Contains("another one is live"), Error);

    kill(getpid(), SIGTERM);
    REQUIRE(within_seconds([&] { return stop.requested(); }));
    CHECK(stop.signal() == SIGTERM);
  }
  CHECK_FALSE(blocked_here(SIGINT));
  CHECK_FALSE(blocked_here(SIGTERM));
  struct sigaction now {};
  sigaction(SIGINT, nullptr, &now);
  CHECK((now.sa_handler == before.sa_handler));
  // A new one starts with no request.
  training::StopSignals again;
  CHECK_FALSE(again.requested());
}

TEST_CASE("StopSignals: the kernels' threads, started after it, block both signals; only its own thread takes them") {
  const int status = in_child([] {
    training::StopSignals stop;
    set_num_threads(2);
    // A product big enough to run on both threads: the kernels' thread pool starts here.
    const Tensor a = randn({256, 256}), b = randn({256, 256});
    const Tensor c = matmul(a, b);
    if (!std::isfinite(sum(c).item())) return 3;
    const unsigned long long both = (1ull << (SIGINT - 1)) | (1ull << (SIGTERM - 1));
    std::size_t blocking = 0, others = 0;
    for (const unsigned long long mask : thread_masks()) ((mask & both) == both ? blocking : others) += 1;
    // The waiting thread shows the two unblocked while it waits in sigwait.
    if (others != 1) return 4;
    if (blocking < 2) return 5;  // this thread and at least one thread of the kernels
    return 0;
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
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
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("StopSignals: a child forked while it lives gets the signals' handling from before") {
  struct sigaction before {};
  sigaction(SIGTERM, nullptr, &before);
  training::StopSignals stop;
  const int status = in_child([&] {
    if (blocked_here(SIGINT) || blocked_here(SIGTERM)) return 3;  // a program it ran would start so
    struct sigaction now {};
    sigaction(SIGTERM, nullptr, &now);
    if (now.sa_handler != before.sa_handler) return 4;
    training::StopSignals own;  // the parent's is not the child's: it may have its own
    return blocked_here(SIGINT) ? 0 : 5;
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(blocked_here(SIGINT));  // the parent's still in force
}
