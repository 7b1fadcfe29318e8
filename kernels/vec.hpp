// One vector register of floats for the register-blocked kernels (small_gemm, skinny_linear, the
// row sums), through GCC's vector extensions: W floats, the width of the ISA the library is
// compiled for (AVX-512: 16, with 32 registers; AVX: 8, with 16; else 4).
#pragma once

#include <cstddef>
#include <cstring>

#if defined(__AVX__) && !defined(__AVX512F__)
#include <immintrin.h>
#endif

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

/// Lane i of the result: the sum of the lanes of v[i], for all W vectors at once. With AVX, a
/// tree of horizontal adds (three levels, then the two halves): 9 instructions for 8 sums.
inline Vec lanes_sums(const Vec (&v)[W]) {
#if defined(__AVX__) && !defined(__AVX512F__)
  const __m256 s01 = _mm256_hadd_ps(__m256(v[0]), __m256(v[1]));  // (v0 01, v0 23, v1 01, v1 23 | same, lanes 4-7)
  const __m256 s23 = _mm256_hadd_ps(__m256(v[2]), __m256(v[3]));
  const __m256 s45 = _mm256_hadd_ps(__m256(v[4]), __m256(v[5]));
  const __m256 s67 = _mm256_hadd_ps(__m256(v[6]), __m256(v[7]));
  const __m256 s0123 = _mm256_hadd_ps(s01, s23);  // (v0 0-3, v1 0-3, v2 0-3, v3 0-3 | v0 4-7, ...)
  const __m256 s4567 = _mm256_hadd_ps(s45, s67);
  const __m256 low = _mm256_permute2f128_ps(s0123, s4567, 0x20);   // (v0-v3 lanes 0-3 | v4-v7 lanes 0-3)
  const __m256 high = _mm256_permute2f128_ps(s0123, s4567, 0x31);  // the same of lanes 4-7
  return Vec(_mm256_add_ps(low, high));
#else
  Vec out;
  for (std::size_t i = 0; i < W; ++i) out[i] = lanes_sum(v[i]);
  return out;
#endif
}

/// The W x W block of v transposed in place: lane j of v[i] becomes lane i of v[j]. With AVX,
/// three rounds of shuffles (pairs, quads, then the two halves): 24 instructions.
inline void transpose(Vec (&v)[W]) {
#if defined(__AVX__) && !defined(__AVX512F__)
  __m256 a[8], b[8];
  for (int i = 0; i < 8; i += 2) {  // a[i], a[i+1]: lanes of rows i and i+1 interleaved
    a[i] = _mm256_unpacklo_ps(__m256(v[i]), __m256(v[i + 1]));
    a[i + 1] = _mm256_unpackhi_ps(__m256(v[i]), __m256(v[i + 1]));
  }
  for (int i = 0; i < 8; i += 4) {  // b: columns 4 rows at a time, within each 128-bit half
    b[i] = _mm256_shuffle_ps(a[i], a[i + 2], 0x44);
    b[i + 1] = _mm256_shuffle_ps(a[i], a[i + 2], 0xEE);
    b[i + 2] = _mm256_shuffle_ps(a[i + 1], a[i + 3], 0x44);
    b[i + 3] = _mm256_shuffle_ps(a[i + 1], a[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {  // rows 0-3 from the low halves, 4-7 from the high ones
    v[i] = Vec(_mm256_permute2f128_ps(b[i], b[i + 4], 0x20));
    v[i + 4] = Vec(_mm256_permute2f128_ps(b[i], b[i + 4], 0x31));
  }
#else
  for (std::size_t i = 0; i < W; ++i) {
    for (std::size_t j = i + 1; j < W; ++j) {
      const float t = v[i][j];
      v[i][j] = v[j][i];
      v[j][i] = t;
    }
  }
#endif
}

}  // namespace xgrad::kernels::vec
