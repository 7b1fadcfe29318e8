// One vector register of floats for the register-blocked kernels (small_gemm, skinny_linear, the
// row sums), through GCC's vector extensions: W floats, the width of the ISA the library is
// compiled for (AVX-512: 16, with 32 registers; AVX: 8, with 16; else 4).
#pragma once

#include <cstddef>
#include <cstring>

namespace xgrad::kernels::vec {

#if defined(__AVX512F__)
constexpr std::size_t W = 16, kRegisters = 32;
#elif defined(__AVX__)
constexpr std::size_t W = 8, kRegisters = 16;
#else
constexpr std::size_t W = 4, kRegisters = 16;
#endif
typedef float Vec __attribute__((vector_size(W * sizeof(float))));

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}

inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(Vec)); }

/// The sum of the W lanes, in lane order.
inline float lanes_sum(Vec v) {
  float s = 0.f;
  for (std::size_t i = 0; i < W; ++i) s += v[i];
  return s;
}

}  // namespace xgrad::kernels::vec
