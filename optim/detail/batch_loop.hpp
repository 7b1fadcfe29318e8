// The loop every optimizer update runs: SIMD batches over parallel float arrays, with options as
// compile-time flags so no branch is left inside.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim::detail {

using Batch = xsimd::batch<float>;
constexpr auto kBatchWidth = static_cast<std::int64_t>(Batch::size);
// Elements per unit of work shared among threads; a multiple of every batch width.
constexpr std::int64_t kBlock = 4096;

/// Calls update(pointers) for every run of kBatchWidth consecutive elements of `arrays`, N
/// parallel arrays of n floats (a null array stays null). The last, partial run goes through a
/// zero-padded scratch copy, so every element takes the very same instructions whatever n, its
/// place, its alignment or the number of threads: results never depend on them.
template <std::size_t N, class Update>
void for_each_batch(const std::array<float*, N>& arrays, std::int64_t n, Update update) {
  const std::int64_t full = n / kBatchWidth * kBatchWidth;
  const std::int64_t blocks = (full + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= static_cast<std::int64_t>(kParallelUpdateElements))
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t end = std::min(full, (b + 1) * kBlock);
    for (std::int64_t k = b * kBlock; k < end; k += kBatchWidth) {
      std::array<float*, N> at;
      for (std::size_t i = 0; i < N; ++i) at[i] = arrays[i] ? arrays[i] + k : nullptr;
      update(at);
    }
  }
  if (full == n) return;
  alignas(64) float scratch[N][kBatchWidth] = {};
  std::array<float*, N> at;
  for (std::size_t i = 0; i < N; ++i) {
    at[i] = arrays[i] ? scratch[i] : nullptr;
    if (arrays[i]) std::copy(arrays[i] + full, arrays[i] + n, scratch[i]);
  }
  update(at);
  for (std::size_t i = 0; i < N; ++i) {
    if (arrays[i]) std::copy(scratch[i], scratch[i] + (n - full), arrays[i] + full);
  }
}

/// Calls f(std::true_type{}) or f(std::false_type{}): inside f, decltype(arg)::value is a constant.
template <class F>
void with_flag(bool flag, F&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

}  // namespace xgrad::optim::detail
