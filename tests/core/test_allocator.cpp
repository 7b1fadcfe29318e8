// The caching allocator behind Array: a freed large block serves the next array of its size
// class, small blocks are kept within a bound, the counters follow live arrays, empty_cache gives
// the cached blocks back, the cache stays bounded, and concurrent use from the kernels' threads
// keeps the books straight.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

constexpr std::size_t kLarge = 100'000;  // floats: 400 KB, a cached size

}  // namespace

TEST_CASE("a freed large array's block serves the next array of the same size class") {
  empty_cache();
  const float* first = nullptr;
  {
    Array a = Array::from_shape({kLarge});
    first = a.data();
  }
  const std::size_t hits = memory_cache_hits(), misses = memory_cache_misses();
  {
    Array b = Array::from_shape({kLarge - 1000});  // 396 KB: the same class (384-448 KB)
    CHECK(b.data() == first);
  }
  CHECK(memory_cache_hits() == hits + 1);
  CHECK(memory_cache_misses() == misses);
  {
    Array c = Array::from_shape({2 * kLarge});  // another class: from the system
  }
  CHECK(memory_cache_misses() == misses + 1);
}

TEST_CASE("a freed small array's block is kept for the next array of its size, within 2 MB in all") {
  empty_cache();
  REQUIRE(memory_reserved() == memory_allocated());
  const float* first = nullptr;
  {
    Array a = Array::from_shape({100});  // 400 bytes: a block of 448
    first = a.data();
  }
  CHECK(memory_reserved() == memory_allocated() + 448);  // kept, not returned
  {
    Array other = Array::from_shape({200});  // 800 bytes: another size, from the system
    CHECK(other.data() != first);
    Array same = Array::from_shape({110});  // 440 bytes: the same block of 448
    CHECK(same.data() == first);
    CHECK(memory_reserved() == memory_allocated());
  }
  empty_cache();
  CHECK(memory_reserved() == memory_allocated());

  // 32 arrays of each multiple of 64 bytes up to 16000, freed together (16 MB): 2 MB kept at most.
  {
    std::vector<Array> arrays;
    for (std::size_t floats = 16; floats <= 4000; floats += 16) {
      for (int i = 0; i < 32; ++i) arrays.push_back(Array::from_shape({floats}));
    }
  }
  CHECK(memory_reserved() > memory_allocated());
  CHECK(memory_reserved() <= memory_allocated() + (std::size_t{2} << 20));
  empty_cache();
  CHECK(memory_reserved() == memory_allocated());
}

TEST_CASE("blocks are aligned to a cache line, small and large") {
  for (std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{4096}, kLarge}) {
    Array a = Array::from_shape({n});
    CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % memory::kAlignment == 0);
  }
}

TEST_CASE("memory_allocated follows live arrays; empty_cache returns the free blocks") {
  empty_cache();
  const std::size_t before = memory_allocated();
  std::size_t with_array = 0;
  {
    Array a = xt::ones<float>({kLarge});
    with_array = memory_allocated();
    CHECK(with_array >= before + kLarge * sizeof(float));
    CHECK(with_array <= before + kLarge * sizeof(float) * 5 / 4);  // at most a quarter rounding
    CHECK(max_memory_allocated() >= with_array);
    CHECK(memory_reserved() >= with_array);
  }
  CHECK(memory_allocated() == before);
  CHECK(memory_reserved() >= before + kLarge * sizeof(float));  // kept for reuse
  empty_cache();
  CHECK(memory_reserved() == memory_allocated());

  reset_peak_memory_stats();
  CHECK(max_memory_allocated() == memory_allocated());
}

TEST_CASE("a smaller request takes a cached block up to twice its size, no larger") {
  empty_cache();
  const float* first = nullptr;
  {
    Array a = Array::from_shape({kLarge});  // 448 KB class
    first = a.data();
  }
  {
    Array tiny = Array::from_shape({kLarge / 4});  // 100 KB: a 448 KB block would waste too much
    CHECK(tiny.data() != first);
  }
  {
    Array shorter = Array::from_shape({kLarge * 3 / 4});  // 300 KB: takes the 448 KB block
    CHECK(shorter.data() == first);
    CHECK(memory_allocated() >= kLarge * sizeof(float));  // counted at the block's size
  }
}

TEST_CASE("memory taken from the system stays within a quarter above the peak of live arrays") {
  empty_cache();
  reset_peak_memory_stats();
  // 300 live blocks of 400 KB (131 MB with rounding) freed at once, then 300 of 800 KB, which
  // cannot use the first set: most of the first set must go back to the system, not stay
  // beside them (262 + 131 MB would be half as much again as the peak).
  std::size_t peak_live = 0;
  for (std::size_t size : {kLarge, 2 * kLarge, kLarge, 2 * kLarge}) {
    std::vector<Array> arrays;
    for (int i = 0; i < 300; ++i) arrays.push_back(Array::from_shape({size}));
    peak_live = std::max(peak_live, memory_allocated());
    CHECK(memory_reserved() <= peak_live * 5 / 4);
  }
  CHECK(memory_reserved() >= 300 * 2 * kLarge * sizeof(float));  // the last set is kept for reuse
  empty_cache();
}

TEST_CASE("arrays from many threads: every block returned, the counters balance") {
  empty_cache();
  const std::size_t before = memory_allocated();
  std::vector<double> sums(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &sums] {
      for (int i = 0; i < 200; ++i) {
        const std::size_t n = kLarge + static_cast<std::size_t>((i * 7 + t) % 16) * 20000;
        Array a = xt::ones<float>({n});
        Array b = a * 2.0f;
        sums[t] += xt::sum(b)() - 2.0 * n;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (double sum : sums) CHECK(sum == 0.0);
  CHECK(memory_allocated() == before);
}

TEST_CASE("Indices and Mask come from the same allocator") {
  empty_cache();
  const std::size_t before = memory_allocated();
  Indices ids = Indices::from_shape({kLarge});
  Mask mask = Mask::from_shape({kLarge * 4});
  CHECK(memory_allocated() >= before + kLarge * sizeof(std::int64_t) + kLarge * 4);
}
