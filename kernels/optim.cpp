// Optimizer updates in xsimd batches over parallel float arrays, with the options as compile-time
// flags so no branch is left inside; clipping's sums over fixed chunks and in-place loops.
#include <xgrad/kernels/optim.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/with_flag.hpp>

namespace xgrad::kernels {

namespace {

/// Parameters with at least this many elements are updated by all threads; smaller ones by one
/// (a parallel region costs more than it saves below it).
constexpr std::size_t kParallelUpdateElements = kParallelWork;

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
  parallel_for(static_cast<std::size_t>(blocks), n >= static_cast<std::int64_t>(kParallelUpdateElements),
               [&](std::size_t b) {
                 const std::int64_t end = std::min<std::int64_t>(full, (b + 1) * kBlock);
                 for (std::int64_t k = b * kBlock; k < end; k += kBatchWidth) {
                   std::array<float*, N> at;
                   for (std::size_t i = 0; i < N; ++i) at[i] = arrays[i] ? arrays[i] + k : nullptr;
                   update(at);
                 }
               });
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

// One Adam step of a contiguous parameter, with torch's operation order (its addcmul is
// v + (value * g) * g, its addcdiv p + (value * m) / denom).
template <bool Amsgrad, bool CoupledDecay>
void adam_update(float* param, float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
                 std::int64_t n, const AdamConstants& c) {
  const Batch sign(c.sign), shrink(c.shrink), weight_decay(c.weight_decay), beta1(c.beta1),
      one_minus_beta1(c.one_minus_beta1), beta2(c.beta2), one_minus_beta2(c.one_minus_beta2),
      bias_correction2_sqrt(c.bias_correction2_sqrt), eps(c.eps), neg_step_size(c.neg_step_size);
  for_each_batch<5>({param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq}, n, [&](const std::array<float*, 5>& at) {
    Batch g = Batch::load_unaligned(at[1]) * sign;
    const Batch p = Batch::load_unaligned(at[0]) * shrink;
    if constexpr (CoupledDecay) g = g + weight_decay * p;
    const Batch m = Batch::load_unaligned(at[2]) * beta1 + one_minus_beta1 * g;
    const Batch v = Batch::load_unaligned(at[3]) * beta2 + one_minus_beta2 * g * g;
    m.store_unaligned(at[2]);
    v.store_unaligned(at[3]);
    Batch second = v;
    if constexpr (Amsgrad) {
      const Batch previous = Batch::load_unaligned(at[4]);
      second = xsimd::select((v > previous) || (v != v), v, previous);  // torch.maximum: NaN wins
      second.store_unaligned(at[4]);
    }
    const Batch denom = xsimd::sqrt(second) / bias_correction2_sqrt + eps;
    (p + neg_step_size * m / denom).store_unaligned(at[0]);
  });
}

// One SGD step of a contiguous parameter, with torch's operation order (its add with alpha is
// a + alpha * b). First: the momentum buffer starts as d.
template <bool Decay, bool Momentum, bool First, bool Nesterov>
void sgd_update(float* param, float* grad, float* momentum_buffer, std::int64_t n, const SGDConstants& c) {
  const Batch sign(c.sign), weight_decay(c.weight_decay), momentum(c.momentum), keep(c.keep), neg_lr(c.neg_lr);
  for_each_batch<3>({param, grad, momentum_buffer}, n, [&](const std::array<float*, 3>& at) {
    const Batch p = Batch::load_unaligned(at[0]);
    Batch d = Batch::load_unaligned(at[1]) * sign;
    if constexpr (Decay) d = d + weight_decay * p;
    if constexpr (Momentum) {
      Batch buffer = d;
      if constexpr (!First) buffer = Batch::load_unaligned(at[2]) * momentum + keep * d;
      buffer.store_unaligned(at[2]);
      if constexpr (Nesterov) d = d + momentum * buffer;
      else d = buffer;
    }
    (p + neg_lr * d).store_unaligned(at[0]);
  });
}

// Elements per partial sum: fixed, so that the sums' order never depends on the thread count.
constexpr std::int64_t kChunk = 8192;

// sum_k f(x_k) in double, over fixed chunks (in parallel for large arrays) added in order; within
// a chunk, eight running sums over k mod 8 (vectorizable, and the same order at any address).
template <class F>
double chunked_sum(const float* x, std::size_t size, F f) {
  const auto n = static_cast<std::int64_t>(size);
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
  parallel_for(static_cast<std::size_t>(chunks), size >= kParallelUpdateElements, [&](std::size_t chunk) {
    const auto c = static_cast<std::int64_t>(chunk);
    const std::int64_t begin = c * kChunk;
    const std::int64_t end = std::min(n, begin + kChunk);
    double lanes[8] = {};
    std::int64_t k = begin;
    for (; k + 8 <= end; k += 8) {
      for (int j = 0; j < 8; ++j) lanes[j] += f(x[k + j]);
    }
    for (int j = 0; k < end; ++k, ++j) lanes[j] += f(x[k]);
    partial[static_cast<std::size_t>(c)] =
        ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace

void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
                 std::size_t n, const AdamConstants& c, bool amsgrad, bool coupled_decay) {
  // grad is only read: for_each_batch writes its tail back unchanged.
  float* g = const_cast<float*>(grad);
  with_flag(amsgrad, [&](auto amsgrad_flag) {
    with_flag(coupled_decay, [&](auto decay_flag) {
      adam_update<decltype(amsgrad_flag)::value, decltype(decay_flag)::value>(
          param, g, exp_avg, exp_avg_sq, amsgrad ? max_exp_avg_sq : nullptr, static_cast<std::int64_t>(n), c);
    });
  });
}

void sgd_update(float* param, const float* grad, float* momentum_buffer, std::size_t n, const SGDConstants& c,
                bool decay, bool momentum, bool first, bool nesterov) {
  // grad is only read: for_each_batch writes its tail back unchanged.
  float* g = const_cast<float*>(grad);
  float* buffer = momentum ? momentum_buffer : nullptr;
  with_flag(decay, [&](auto decay_flag) {
    with_flag(momentum, [&](auto momentum_flag) {
      with_flag(first, [&](auto first_flag) {
        with_flag(nesterov, [&](auto nesterov_flag) {
          sgd_update<decltype(decay_flag)::value, decltype(momentum_flag)::value, decltype(first_flag)::value,
                     decltype(nesterov_flag)::value>(param, g, buffer, static_cast<std::int64_t>(n), c);
        });
      });
    });
  });
}

double sum_abs_pow(const float* x, std::size_t n, double p) {
  if (p == 2.0) return chunked_sum(x, n, [](float v) { return static_cast<double>(v) * v; });
  if (p == 1.0) return chunked_sum(x, n, [](float v) { return std::abs(static_cast<double>(v)); });
  return chunked_sum(x, n, [p](float v) { return std::pow(std::abs(static_cast<double>(v)), p); });
}

float max_abs(const float* x, std::size_t n) {
  float result = 0.f;
  for (std::size_t k = 0; k < n; ++k) {
    const float a = std::abs(x[k]);
    if (a > result || a != a) result = a;
    if (result != result) break;
  }
  return result;
}

void scale_(float* x, std::size_t n, float coef) {
  parallel_blocks(n, n >= kParallelUpdateElements, [&](std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t k = begin; k < end; ++k) x[k] = x[k] * coef;
  });
}

void clamp_(float* x, std::size_t n, float low, float high) {
  parallel_blocks(n, n >= kParallelUpdateElements, [&](std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t k = begin; k < end; ++k) x[k] = std::min(std::max(x[k], low), high);  // NaN stays NaN
  });
}

}  // namespace xgrad::kernels
