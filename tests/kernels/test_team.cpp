// with_team and team_for: f runs on the calling thread; each part once, part t on thread t of
// the team; parallel_for inside the team goes over its threads without a region of its own, a
// loop inside a part runs alone; exceptions from f or from any part come out, and the team goes on.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <omp.h>

#include <xgrad/core/threads.hpp>
#include <xgrad/kernels/linear.hpp>
#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/team.hpp>

using namespace xgrad::kernels;

namespace {

/// Restores the thread count a test changes.
struct Threads {
  int before = omp_get_max_threads();
  explicit Threads(int n) { xgrad::set_num_threads(n); }
  ~Threads() { xgrad::set_num_threads(before); }
};

/// Whether this machine can form a team of two (it has two cores for this process).
bool two_cores() {
  if (cores_available() >= 2) return true;
  MESSAGE("one core: no team of two to test");
  return false;
}

}  // namespace

TEST_CASE("with_team: f runs on this thread, with the other threads as its team") {
  const int n = std::min<int>(3, static_cast<int>(cores_available()));
  if (n >= 2) {
    CAPTURE(n);
    Threads threads(n);
    const auto caller = std::this_thread::get_id();
    std::thread::id ran_on;
    std::size_t size = 0;
    with_team([&] {
      ran_on = std::this_thread::get_id();
      size = team_size();
    });
    CHECK((ran_on == caller));
    CHECK(size == static_cast<std::size_t>(n));
    CHECK(team_size() == 0);  // outside f
  }
}

TEST_CASE("with_team alone: one thread, more threads than cores, inside a region, inside another team") {
  for (const int n : {1, static_cast<int>(cores_available()) + 1}) {
    CAPTURE(n);
    Threads threads(n);
    std::size_t size = 99;
    with_team([&] { size = team_size(); });
    CHECK(size == 0);
  }
  if (!two_cores()) return;
  Threads threads(2);
  std::size_t inner = 99;
  with_team([&] { with_team([&] { inner = team_size(); }); });
  CHECK(inner == 2);  // the outer team's: the inner with_team ran f alone
  std::atomic<int> sizes{0};
#pragma omp parallel num_threads(2)
  with_team([&] { sizes += static_cast<int>(team_size()); });
  CHECK(sizes == 0);
}

TEST_CASE("team_for: part t on thread t of the team, each once; alone outside a team") {
  const std::size_t n = std::min<std::size_t>(3, cores_available());
  Threads threads(static_cast<int>(n));
  std::vector<int> thread_of(n, -1), expected(n);
  std::vector<std::size_t> sizes(n, 0);
  for (std::size_t t = 0; t < n; ++t) expected[t] = static_cast<int>(t);
  with_team([&] {
    for (int round = 0; round < 50; ++round) {  // many jobs in a row: the hand-off is reused
      std::fill(thread_of.begin(), thread_of.end(), -1);
      team_for([&](std::size_t t, std::size_t size) {
        thread_of[t] = omp_get_thread_num();
        sizes[t] = size;
      });
      CHECK(thread_of == expected);
      CHECK(sizes == std::vector<std::size_t>(n, n));
    }
  });
  std::size_t parts = 0, size = 0;
  team_for([&](std::size_t, std::size_t n) { ++parts, size = n; });
  CHECK(parts == 1);
  CHECK(size == 1);
}

TEST_CASE("parallel_for inside a team: over its threads when the work asks for it, each index once") {
  if (!two_cores()) return;
  Threads threads(2);
  with_team([&] {
    for (const bool parallel : {true, false}) {
      CAPTURE(parallel);
      std::vector<std::atomic<int>> count(101);
      std::set<int> on;
      std::atomic<int> levels{0};
      std::mutex m;
      parallel_for(101, parallel, [&](std::size_t i) {
        ++count[i];
        levels += omp_get_level() > 1;  // no region inside the team's
        const std::lock_guard<std::mutex> lock(m);
        on.insert(omp_get_thread_num());
      });
      for (const auto& c : count) CHECK(c == 1);
      CHECK(levels == 0);
      CHECK(on.size() == (parallel ? 2u : 1u));
    }
    // A loop inside a part runs alone, on that part's thread.
    std::vector<std::set<int>> inner(2);
    team_for([&](std::size_t t, std::size_t) {
      parallel_for(64, true, [&](std::size_t) { inner[t].insert(omp_get_thread_num()); });
    });
    CHECK(inner[0] == std::set<int>{0});
    CHECK(inner[1] == std::set<int>{1});
  });
}

TEST_CASE("a few-row product inside a team splits from kTeamProducts; the sums are the same") {
  if (!two_cores()) return;
  Threads threads(2);
  const std::size_t in = 256, out = 256;  // 65536 multiply-adds a row: above kTeamProducts only
  REQUIRE(in * out > kTeamProducts);
  REQUIRE(in * out <= kParallelProducts);
  std::vector<float> x(in), w(out * in);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 13) - 0.05f;
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.001f * static_cast<float>(i % 101) - 0.04f;
  std::vector<float> alone(out, 0.f), in_team(out, 0.f);
  skinny_linear(x.data(), 1, in, w.data(), out, alone.data());
  bool split = false;
  with_team([&] {
    split = split_product(in * out);
    skinny_linear(x.data(), 1, in, w.data(), out, in_team.data());
  });
  CHECK(split);
  CHECK_FALSE(split_product(in * out));
  CHECK(in_team == alone);
}

TEST_CASE("team: an exception from f, or from a part on any thread, comes out; the team goes on") {
  if (!two_cores()) return;
  Threads threads(2);
  CHECK_THROWS_WITH_AS(with_team([] { throw std::runtime_error("from f"); }), "from f", std::runtime_error);
  int after = 0;
  with_team([&] {
    for (const std::size_t thrower : {0u, 1u}) {
      CAPTURE(thrower);
      CHECK_THROWS_WITH_AS(team_for([&](std::size_t t, std::size_t) {
                             if (t == thrower) throw std::runtime_error("from a part");
                           }),
                           "from a part", std::runtime_error);
    }
    std::atomic<int> parts{0};
    team_for([&](std::size_t, std::size_t) { ++parts; });
    after = parts;
  });
  CHECK(after == 2);
}
