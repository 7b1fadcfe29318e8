// A scalar helper written so that GCC vectorizes it inside `omp simd` loops: a branch-free select.
// (exp over a vector of floats: vec::exp.)
#pragma once

#include <cstdint>

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

}  // namespace xgrad::kernels
