// The allocator behind every float array xgrad holds (Array): large blocks freed by one op are
// kept, by size class, and handed to the next op that asks for that size, as PyTorch's CUDA
// caching allocator does. A training step allocates the same arrays step after step; with this
// the second step onwards takes them from the cache instead of faulting fresh pages in from the
// system. The memory it holds stays within a quarter above the most live arrays have ever
// needed (least recently freed blocks go back first). Only xgrad's arrays use it: the process's
// malloc is left as it is.
#pragma once

#include <cstddef>
#include <new>

namespace xgrad {

namespace memory {

/// Blocks of at least this many bytes are cached by size class, within the bound above. Smaller
/// ones come from malloc, and a few of each size (a multiple of kAlignment) are kept on their
/// free, 2 MB of them at most. (At 64 KB, a decoding step's arrays of 32 rows of 256 floats went
/// to malloc, whose heap, trimmed when its top was free, was faulted in again page by page every
/// step.)
inline constexpr std::size_t kCachedMinBytes = std::size_t{16} << 10;
/// Every block is aligned to a cache line, which the vectorized kernels prefer.
inline constexpr std::size_t kAlignment = 64;

/// A block of at least `bytes` bytes (aligned to kAlignment); throws std::bad_alloc.
void* allocate(std::size_t bytes);
/// Returns a block from allocate(bytes) (with the same `bytes`) to the cache or the system.
void deallocate(void* block, std::size_t bytes) noexcept;

}  // namespace memory

/// Bytes held by live arrays (as torch.cuda.memory_allocated).
std::size_t memory_allocated();
/// The most memory_allocated() has been since the start or the last reset_peak_memory_stats().
std::size_t max_memory_allocated();
/// Bytes taken from the system: live arrays plus freed blocks kept for reuse
/// (as torch.cuda.memory_reserved).
std::size_t memory_reserved();
/// Large allocations served from the cache, and those that went to the system, since the start
/// (small blocks are not counted).
std::size_t memory_cache_hits();
std::size_t memory_cache_misses();
/// Returns every cached free block to the system (as torch.cuda.empty_cache). Live arrays are
/// untouched.
void empty_cache();
void reset_peak_memory_stats();

/// The standard-library allocator interface over memory::allocate, for xtensor's containers.
template <class T>
struct CachingAllocator {
  using value_type = T;

  CachingAllocator() noexcept = default;
  template <class U>
  CachingAllocator(const CachingAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(memory::allocate(n * sizeof(T)));
  }
  void deallocate(T* block, std::size_t n) noexcept { memory::deallocate(block, n * sizeof(T)); }

  template <class U>
  bool operator==(const CachingAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CachingAllocator<U>&) const noexcept { return false; }
};

}  // namespace xgrad
