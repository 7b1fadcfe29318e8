// Scalar helpers written so that GCC vectorizes them inside `omp simd` loops: a branch-free
// select and exp in float (std::exp is a scalar call).
#pragma once

#include <cstdint>
#include <limits>

namespace xgrad::kernels {

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

}  // namespace xgrad::kernels
