// Dropout's loops: eight (AVX2) or sixteen (AVX-512) Philox blocks side by side in vector lanes,
// branch-free selects.
#include <xgrad/kernels/dropout.hpp>

#include <algorithm>

#include <immintrin.h>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/simd.hpp>

namespace xgrad::kernels {

namespace {

constexpr std::size_t kChunk = 1024;  // draws made at once, on the stack
constexpr std::uint64_t kGroup = PhiloxStream::kGroup;

/// The draws of `groups` whole groups from group g0 on (PhiloxStream's layout), into out.
void philox_groups(const PhiloxStream& stream, std::uint64_t g0, std::size_t groups, std::uint32_t* out) {
#if defined(__AVX512F__)
  // Sixteen blocks in the lanes, two groups a vector: lanes 0-7 group g, lanes 8-15 group g + 1,
  // each half stored where the group's words go. mulhilo as below, on 16 lanes.
  const auto k0 = static_cast<std::uint32_t>(stream.key), k1 = static_cast<std::uint32_t>(stream.key >> 32);
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53u), m1 = _mm512_set1_epi64(0xCD9E8D57u);
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  constexpr __mmask16 kOdd = 0xAAAA;
  auto mulhilo = [](__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
    const __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    lo = _mm512_mask_blend_epi32(kOdd, even, _mm512_slli_epi64(odd, 32));
    hi = _mm512_mask_blend_epi32(kOdd, _mm512_srli_epi64(even, 32), odd);
  };
  constexpr std::size_t kInFlight = 4;  // vectors, as below: 8 groups
  for (std::size_t g = 0; g < groups; g += 2 * kInFlight) {
    __m512i c0[kInFlight], c1[kInFlight], c2[kInFlight], c3[kInFlight];
    for (std::size_t u = 0; u < kInFlight; ++u) {
      // The first block, 8 | b: lanes 8-15 may carry into the high word (the low word wraps).
      const std::uint64_t b = 8 * (g0 + g + 2 * u);
      const __m512i low = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(b)));
      const __m512i high = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(b >> 32)));
      c0[u] = _mm512_add_epi32(low, lanes);
      const __mmask16 carry = _mm512_cmplt_epu32_mask(c0[u], low);
      c1[u] = _mm512_mask_add_epi32(high, carry, high, _mm512_set1_epi32(1));
      c2[u] = c3[u] = _mm512_setzero_si512();
    }
    std::uint32_t r0 = k0, r1 = k1;
    for (int round = 0; round < 10; ++round) {
      const __m512i key0 = _mm512_set1_epi32(static_cast<int>(r0)), key1 = _mm512_set1_epi32(static_cast<int>(r1));
      for (std::size_t u = 0; u < kInFlight; ++u) {
        __m512i hi0, lo0, hi1, lo1;
        mulhilo(c0[u], m0, hi0, lo0);
        mulhilo(c2[u], m1, hi1, lo1);
        c0[u] = _mm512_ternarylogic_epi32(hi1, c1[u], key0, 0x96);  // three-way xor
        c1[u] = lo1;
        c2[u] = _mm512_ternarylogic_epi32(hi0, c3[u], key1, 0x96);
        c3[u] = lo0;
      }
      r0 += 0x9E3779B9u;
      r1 += 0xBB67AE85u;
    }
    for (std::size_t u = 0; u < kInFlight; ++u) {
      const __m512i words[4] = {c0[u], c1[u], c2[u], c3[u]};
      for (std::size_t half = 0; half < 2; ++half) {
        const std::size_t group = g + 2 * u + half;
        if (group >= groups) break;
        for (std::size_t w = 0; w < 4; ++w) {
          const __m512i draws = _mm512_srli_epi32(words[w], 8);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + group * kGroup + 8 * w),
                              half ? _mm512_extracti64x4_epi64(draws, 1) : _mm512_castsi512_si256(draws));
        }
      }
    }
  }
#elif defined(__AVX2__)
  // Eight blocks in the lanes, one vector per counter word. mulhilo of 32-bit lanes: the even
  // lanes' 64-bit products, then the odd lanes' (shifted down), blended back into lo and hi.
  const auto k0 = static_cast<std::uint32_t>(stream.key), k1 = static_cast<std::uint32_t>(stream.key >> 32);
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53u), m1 = _mm256_set1_epi64x(0xCD9E8D57u);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  auto mulhilo = [](__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
    const __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  };
  // Groups go kInFlight at a time: the rounds of one are a chain of dependent multiplies, which
  // would leave the multiplier idle most of the time.
  constexpr std::size_t kInFlight = 4;
  for (std::size_t g = 0; g < groups; g += kInFlight) {
    const std::size_t count = std::min(kInFlight, groups - g);
    __m256i c0[kInFlight], c1[kInFlight], c2[kInFlight], c3[kInFlight];
    for (std::size_t u = 0; u < kInFlight; ++u) {
      const std::uint64_t b = 8 * (g0 + g + u);  // the first block; 8 | b, so its 8 blocks share the high word
      c0[u] = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(b))), lanes);
      c1[u] = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(b >> 32)));
      c2[u] = c3[u] = _mm256_setzero_si256();
    }
    std::uint32_t r0 = k0, r1 = k1;
    for (int round = 0; round < 10; ++round) {
      const __m256i key0 = _mm256_set1_epi32(static_cast<int>(r0)), key1 = _mm256_set1_epi32(static_cast<int>(r1));
      for (std::size_t u = 0; u < kInFlight; ++u) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo(c0[u], m0, hi0, lo0);
        mulhilo(c2[u], m1, hi1, lo1);
        c0[u] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[u]), key0);
        c1[u] = lo1;
        c2[u] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[u]), key1);
        c3[u] = lo0;
      }
      r0 += 0x9E3779B9u;
      r1 += 0xBB67AE85u;
    }
    for (std::size_t u = 0; u < count; ++u) {
      __m256i* o = reinterpret_cast<__m256i*>(out + (g + u) * kGroup);
      _mm256_storeu_si256(o, _mm256_srli_epi32(c0[u], 8));
      _mm256_storeu_si256(o + 1, _mm256_srli_epi32(c1[u], 8));
      _mm256_storeu_si256(o + 2, _mm256_srli_epi32(c2[u], 8));
      _mm256_storeu_si256(o + 3, _mm256_srli_epi32(c3[u], 8));
    }
  }
#else
  for (std::size_t g = 0; g < groups; ++g) {
    for (std::uint64_t lane = 0; lane < 8; ++lane) {
      const PhiloxBlock r = stream.block(8 * (g0 + g) + lane);
      for (std::size_t w = 0; w < 4; ++w) out[g * kGroup + 8 * w + lane] = r.word[w] >> 8;
    }
  }
#endif
}

}  // namespace

void philox_bits(const PhiloxStream& stream, std::uint64_t first, std::uint32_t* out, std::size_t n) {
  std::size_t i = 0;
  for (; i < n && (first + i) % kGroup != 0; ++i) out[i] = stream.bits(first + i);  // up to the next group
  const std::size_t groups = (n - i) / kGroup;
  philox_groups(stream, (first + i) / kGroup, groups, out + i);
  for (i += groups * kGroup; i < n; ++i) out[i] = stream.bits(first + i);
}

void dropout_forward(const PhiloxStream& stream, std::uint32_t drop_below, float scale, const float* x, bool* keep,
                     float* y, std::size_t n) {
  parallel_blocks(n, [&](std::size_t begin, std::size_t end) {
    std::uint32_t bits[kChunk];
    for (std::size_t start = begin; start < end; start += kChunk) {
      const std::size_t len = std::min(kChunk, end - start);
      philox_bits(stream, start, bits, len);
      const float* xs = x + start;
      bool* ks = keep + start;
      float* ys = y + start;
#pragma omp simd
      for (std::size_t j = 0; j < len; ++j) {
        const bool kept = bits[j] >= drop_below;
        ks[j] = kept;
        ys[j] = select(kept, xs[j] * scale, 0.f);
      }
    }
  });
}

void dropout_backward(const bool* keep, const float* dy, float scale, float* dx, std::size_t n) {
  parallel_blocks(n, [&](std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) dx[i] = select(keep[i], dy[i] * scale, 0.f);
  });
}

void dropout_multipliers(const PhiloxStream& stream, std::uint64_t first, std::size_t n, std::uint32_t drop_below,
                         float kept, float* keep) {
  std::uint32_t bits[kChunk];
  for (std::size_t start = 0; start < n; start += kChunk) {
    const std::size_t len = std::min(kChunk, n - start);
    philox_bits(stream, first + start, bits, len);
    float* ks = keep + start;
#pragma omp simd
    for (std::size_t j = 0; j < len; ++j) ks[j] = select(bits[j] < drop_below, 0.f, kept);
  }
}

}  // namespace xgrad::kernels
