// Building blocks of the hand-written kernels (reductions, softmax, layer norm): a tensor seen
// around one axis as (outer, n, inner), a vectorizable exp, and parallelism over rows.
// Internal: included by the ops' .cpp files, not part of the API.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#include <omp.h>

#include <xgrad/autograd/shape.hpp>

namespace xgrad::kernels {

/// A row-major tensor seen around `axis`: element (o, k, i) sits at (o * n + k) * inner + i, with
/// o < outer (the axes before), k < n (the axis), i < inner (the axes after, contiguous).
struct AxisView {
  std::size_t outer = 1, n = 1, inner = 1;
};

inline AxisView axis_view(const Shape& shape, std::size_t axis) {
  AxisView v;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < axis) v.outer *= shape[d];
    else if (d == axis) v.n = shape[d];
    else v.inner *= shape[d];
  }
  return v;
}

/// Work (in elements) below which a kernel stays on one thread: a parallel region costs a few
/// microseconds, about what one core needs for this many elements.
constexpr std::size_t kParallelWork = 32768;

/// Runs body(r) for r in [0, rows), over the OpenMP threads when rows * work_per_row is large.
template <class Body>
void parallel_rows(std::size_t rows, std::size_t work_per_row, Body&& body) {
  const auto count = static_cast<std::int64_t>(rows);
  if (rows < 2 || rows * work_per_row < kParallelWork || omp_get_max_threads() < 2) {
    for (std::int64_t r = 0; r < count; ++r) body(static_cast<std::size_t>(r));
    return;
  }
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < count; ++r) body(static_cast<std::size_t>(r));
}

/// Runs body(begin, end) over blocks of [0, n), over the OpenMP threads when n is large: for
/// elementwise loops.
template <class Body>
void parallel_blocks(std::size_t n, Body&& body) {
  constexpr std::size_t kBlock = 16384;
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  parallel_rows(blocks, kBlock, [&](std::size_t b) { body(b * kBlock, std::min(n, (b + 1) * kBlock)); });
}

inline float float_from_bits(std::int32_t bits) { return __builtin_bit_cast(float, bits); }
inline std::int32_t bits_from_float(float f) { return __builtin_bit_cast(std::int32_t, f); }

/// condition ? a : b, as bit operations: a branch-free select that GCC vectorizes, where a
/// ternary on floats whose operands are computed can be turned into a branch (and then not
/// vectorized unless -fno-trapping-math).
inline float select(bool condition, float a, float b) {
  const std::int32_t mask = -static_cast<std::int32_t>(condition);
  return float_from_bits((bits_from_float(a) & mask) | (bits_from_float(b) & ~mask));
}

/// exp(x) in float, written so that GCC vectorizes it inside an `omp simd` loop (std::exp is a
/// scalar call). exp(x) = 2^k exp(r) with k = round(x / ln 2) and |r| <= ln(2) / 2, where exp(r)
/// is its Taylor polynomial of degree 7 (truncation error r^8 / 8! < 6e-9, below half an ulp).
/// Exact 0 below -87.33 (where exp(x) < FLT_MIN) and for -inf; +inf above 88; NaN gives NaN.
inline float exp_simd(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // ln 2 = kLn2Hi + kLn2Lo, kLn2Hi with few mantissa bits
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kLow = -87.33f;
  constexpr float kHigh = 88.0f;
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * kLog2e + kRound;  // the integer k sits in t's low mantissa bits
  const float k = t - kRound;
  float r = x - k * kLn2Hi;
  r = r - k * kLn2Lo;
  float p = 1.f / 5040;
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  // 2^k built from its exponent bits; outside [kLow, kHigh] this is garbage, replaced below.
  const std::uint32_t k_int =
      static_cast<std::uint32_t>(bits_from_float(t)) - static_cast<std::uint32_t>(bits_from_float(kRound));
  float y = p * float_from_bits(static_cast<std::int32_t>((k_int + 127) << 23));
  y = select(x > kHigh, std::numeric_limits<float>::infinity(), y);
  return select(x < kLow, 0.f, y);  // a NaN x has made every step NaN
}

/// Softmax of one row of attention scores in place, keys whose score is -inf (masked) getting
/// exactly 0; a row with every key masked becomes all zeros (never NaN).
inline void masked_softmax_row(float* row, std::size_t n) {
  float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
  for (std::size_t j = 0; j < n; ++j) max = std::max(max, row[j]);
  if (max == -std::numeric_limits<float>::infinity()) {
    std::fill(row, row + n, 0.f);
    return;
  }
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (std::size_t j = 0; j < n; ++j) {
    const float e = exp_simd(row[j] - max);  // exactly 0 for a masked (-inf) score
    row[j] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
#pragma omp simd
  for (std::size_t j = 0; j < n; ++j) row[j] *= inv;
}

}  // namespace xgrad::kernels
