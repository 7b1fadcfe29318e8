#include <xgrad/core/allocator.hpp>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace xgrad {

namespace {

// Under AddressSanitizer a free block the cache keeps is poisoned until it is handed out again,
// so that reading an array after it was freed is reported as it would be without the cache.
void mark_free([[maybe_unused]] void* block, [[maybe_unused]] std::size_t size) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(block, size);
#endif
}
void mark_live([[maybe_unused]] void* block, [[maybe_unused]] std::size_t size) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(block, size);
#endif
}

// Large blocks are rounded up to one of four sizes per power of two (16 KB, 20 KB, 24 KB,
// 28 KB, 32 KB, 40 KB, ...): at most 25% more than asked, and a step whose sequence length
// varies a little still finds its blocks.
std::size_t size_class(std::size_t bytes) {
  if (bytes < memory::kCachedMinBytes) return (bytes + memory::kAlignment - 1) / memory::kAlignment * memory::kAlignment;
  std::size_t power = memory::kCachedMinBytes;
  while (power <= bytes / 2) power *= 2;  // power <= bytes < 2 * power
  const std::size_t step = power / 4;
  return (bytes + step - 1) / step * step;
}

// A request takes the smallest cached block of its size class or up to twice its size: a step
// with shorter sequences than the last reuses the longer step's blocks.
constexpr std::size_t kMaxWaste = 2;

struct Cached {
  void* block;
  std::size_t size;
};

// Small blocks (below kCachedMinBytes, in multiples of kAlignment) are kept too, up to kKept of
// each size and kSmallMaxBytes in all, in stacks of fixed room: a decoding step takes and frees
// arrays of a row or a few hundreds of times, and aligned_alloc serves them on malloc's slow path
// (glibc's aligned requests bypass its per-thread cache, and a large one first consolidates the
// freed small chunks). No bookkeeping per live block: deallocate is told the size.
struct SmallBlocks {
  static constexpr std::size_t kClasses = memory::kCachedMinBytes / memory::kAlignment;  // class c: (c + 1) * 64 bytes
  static constexpr std::size_t kKept = 32;
  static constexpr std::size_t kSmallMaxBytes = std::size_t{2} << 20;
  void* blocks[kClasses][kKept];
  std::size_t count[kClasses] = {};
  std::size_t bytes = 0;  // held in all

  static std::size_t class_of(std::size_t size) { return size / memory::kAlignment - 1; }
  /// A kept block of exactly `size` bytes, or null.
  void* take(std::size_t size) {
    const std::size_t c = class_of(size);
    if (count[c] == 0) return nullptr;
    bytes -= size;
    void* block = blocks[c][--count[c]];
    mark_live(block, size);
    return block;
  }
  /// Keeps `block` of `size` bytes if there is room; false when it must go back to the system.
  bool keep(void* block, std::size_t size) {
    const std::size_t c = class_of(size);
    if (count[c] == kKept || bytes + size > kSmallMaxBytes) return false;
    blocks[c][count[c]++] = block;
    bytes += size;
    mark_free(block, size);
    return true;
  }
  /// Moves every kept block into `released`.
  void release_all(std::vector<void*>& released) {
    for (std::size_t c = 0; c < kClasses; ++c) {
      released.insert(released.end(), blocks[c], blocks[c] + count[c]);
      count[c] = 0;
    }
    bytes = 0;
  }
};

// Freed large blocks are kept, oldest first. The cache never lets the memory taken from the
// system exceed the largest amount live arrays have ever held by more than a quarter: a request
// the cache cannot serve first returns the least recently freed blocks to the system until the
// new block fits under that bound. (With no slack at all, a block taken by a smaller request
// leaves a later one of its own size to miss, and each miss evicts another: a steady step then
// misses every time.) A steady training step reuses all of its blocks.
struct Pool {
  std::mutex mutex;
  std::list<Cached> free_blocks;                                          // least recently freed first
  std::map<std::size_t, std::deque<std::list<Cached>::iterator>> by_size;  // size -> its free blocks, oldest first
  std::unordered_map<void*, std::size_t> live_sizes;                      // large live block -> its size
  std::size_t allocated = 0;       // bytes of live blocks (as rounded up and handed out)
  std::size_t cached = 0;          // bytes of free blocks held
  std::size_t peak = 0;            // max of allocated since the last reset
  std::size_t lifetime_peak = 0;   // max of allocated ever: 1.25 times it bounds allocated + cached
  std::size_t hits = 0;
  std::size_t misses = 0;
  SmallBlocks small;               // free small blocks kept (small.bytes of them)

  void count_allocated(std::size_t bytes) {
    allocated += bytes;
    if (allocated > peak) peak = allocated;
    if (allocated > lifetime_peak) lifetime_peak = allocated;
  }

  /// A cached block of at least `size` bytes and at most kMaxWaste times that, or null.
  void* take(std::size_t size) {
    for (auto it = by_size.lower_bound(size); it != by_size.end() && it->first <= kMaxWaste * size;) {
      if (it->second.empty()) {
        it = by_size.erase(it);
        continue;
      }
      const auto node = it->second.back();  // the most recently freed: likeliest still in cache
      it->second.pop_back();
      void* block = node->block;
      const std::size_t block_size = node->size;
      cached -= block_size;
      live_sizes[block] = block_size;
      count_allocated(block_size);
      free_blocks.erase(node);
      mark_live(block, block_size);
      return block;
    }
    return nullptr;
  }

  /// Moves the least recently freed blocks into `released` until `size` more bytes fit under
  /// the lifetime peak and a quarter.
  void make_room(std::size_t size, std::vector<void*>& released) {
    const std::size_t bound = std::max(lifetime_peak + lifetime_peak / 4, allocated + size);
    while (!free_blocks.empty() && allocated + cached + size > bound) {
      const Cached oldest = free_blocks.front();
      by_size[oldest.size].pop_front();  // the class's oldest is the oldest overall of its class
      free_blocks.pop_front();
      cached -= oldest.size;
      released.push_back(oldest.block);
    }
  }
};

// Never destroyed: arrays with static storage may be freed after every other static object.
Pool& pool() {
  static Pool* const instance = new Pool;
  return *instance;
}

void* system_allocate(std::size_t bytes) {
  void* block = std::aligned_alloc(memory::kAlignment, bytes);
  if (!block) throw std::bad_alloc();
  return block;
}

}  // namespace

namespace memory {

void* allocate(std::size_t bytes) {
  const std::size_t size = size_class(bytes == 0 ? 1 : bytes);
  Pool& p = pool();
  if (size < kCachedMinBytes) {
    {
      std::lock_guard<std::mutex> lock(p.mutex);
      if (void* block = p.small.take(size)) {
        p.count_allocated(size);
        return block;
      }
    }
    void* block = system_allocate(size);
    std::lock_guard<std::mutex> lock(p.mutex);
    p.count_allocated(size);
    return block;
  }
  std::vector<void*> released;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (void* block = p.take(size)) {
      ++p.hits;
      return block;
    }
    ++p.misses;
    p.make_room(size, released);
  }
  for (void* block : released) std::free(block);
  void* block = system_allocate(size);
  std::lock_guard<std::mutex> lock(p.mutex);
  try {
    p.live_sizes[block] = size;
  } catch (...) {
    std::free(block);
    throw;
  }
  p.count_allocated(size);
  return block;
}

void deallocate(void* block, std::size_t bytes) noexcept {
  if (!block) return;
  const std::size_t size = size_class(bytes == 0 ? 1 : bytes);
  Pool& p = pool();
  if (size < kCachedMinBytes) {
    {
      std::lock_guard<std::mutex> lock(p.mutex);
      p.allocated -= size;
      if (p.small.keep(block, size)) return;
    }
    std::free(block);
    return;
  }
  std::lock_guard<std::mutex> lock(p.mutex);
  const auto live = p.live_sizes.find(block);
  const std::size_t block_size = live->second;  // what allocate handed out, perhaps more than asked
  p.live_sizes.erase(live);
  p.allocated -= block_size;
  try {
    auto& same_size = p.by_size[block_size];
    p.free_blocks.push_back({block, block_size});
    try {
      same_size.push_back(std::prev(p.free_blocks.end()));
    } catch (...) {
      p.free_blocks.pop_back();
      throw;
    }
    p.cached += block_size;
    mark_free(block, block_size);
  } catch (...) {
    std::free(block);  // no room to remember it: back to the system
  }
}

}  // namespace memory

std::size_t memory_allocated() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().allocated;
}

std::size_t max_memory_allocated() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().peak;
}

std::size_t memory_reserved() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().allocated + pool().cached + pool().small.bytes;
}

std::size_t memory_cache_hits() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().hits;
}

std::size_t memory_cache_misses() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().misses;
}

void empty_cache() {
  std::vector<void*> released;
  {
    std::lock_guard<std::mutex> lock(pool().mutex);
    for (const Cached& cached : pool().free_blocks) released.push_back(cached.block);
    pool().free_blocks.clear();
    pool().by_size.clear();
    pool().cached = 0;
    pool().small.release_all(released);
  }
  for (void* block : released) std::free(block);
}

void reset_peak_memory_stats() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  pool().peak = pool().allocated;
}

}  // namespace xgrad
