// int8 linear layers: weight and activation quantization around kernels::gemm_u8s8s32.
#include <xgrad/kernels/quantize.hpp>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <omp.h>

#include <xgrad/core/error.hpp>
#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/linear.hpp>
#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

namespace {

constexpr float kWeightLevels = 127.f;      // Q in [-127, 127]
/// Products of at least this many rows and multiply-adds go by rows over the threads, each
/// thread's rows quantized, multiplied and dequantized by that thread.
constexpr std::size_t kRowSplitRows = 64;
constexpr std::size_t kRowSplitWork = std::size_t{1} << 21;
constexpr float kActivationLevels = 127.f;  // P in [0, 127]

/// One row of activations quantized: P (K), and its scale a and zero point z. False when the row
/// holds a non-finite value (its outputs are then NaN). Vectorized: min and max, then
/// P = floor(clamp(x / a + z, 0, 127) + 1/2), round half up (within a / 2 of x / a + z, as
/// the bound assumes).
bool quantize_row(const float* x, std::size_t K, std::uint8_t* p, float& a, std::int32_t& z) {
  using vec::Vec;
  using vec::W;
  typedef std::int32_t Int __attribute__((vector_size(W * sizeof(std::int32_t))));
  typedef std::uint8_t Byte __attribute__((vector_size(W)));
  Vec lo = Vec{} , hi = Vec{}, poison = Vec{};  // poison: x * 0 summed, NaN if any x is NaN or infinite
  std::size_t k = 0;
  for (; k + W <= K; k += W) {
    const Vec v = vec::load(x + k);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    poison += v * 0.f;
  }
  float low = 0.f, high = 0.f, bad = 0.f;
  for (std::size_t i = 0; i < W; ++i) low = std::min(low, lo[i]), high = std::max(high, hi[i]), bad += poison[i];
  for (; k < K; ++k) low = std::min(low, x[k]), high = std::max(high, x[k]), bad += x[k] * 0.f;
  if (!std::isfinite(bad) || !std::isfinite(high - low)) return false;
  if (high == low) {  // all zeros
    a = 1.f;
    z = 0;
    std::fill(p, p + K, std::uint8_t{0});
    return true;
  }
  a = (high - low) / kActivationLevels;
  const float inverse = 1.f / a;
  z = static_cast<std::int32_t>(std::lrint(-low * inverse));
  const float offset = static_cast<float>(z) + 0.5f;
  const Vec zero = Vec{} , top = zero + (kActivationLevels + 0.5f);
  k = 0;
#if defined(__AVX2__)
  {  // 32 at a time: round, then pack 32-bit to 16 to 8 (exact: values in [0, 127])
    const __m256 low8 = _mm256_setzero_ps(), high8 = _mm256_set1_ps(kActivationLevels + 0.5f);
    const __m256 scale8 = _mm256_set1_ps(inverse), offset8 = _mm256_set1_ps(offset);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    auto quantize8 = [&](const float* from) {
      __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(from), scale8, offset8);
      t = _mm256_min_ps(_mm256_max_ps(t, low8), high8);
      return _mm256_cvttps_epi32(t);
    };
    for (; k + 32 <= K; k += 32) {
      const __m256i words01 = _mm256_packs_epi32(quantize8(x + k), quantize8(x + k + 8));
      const __m256i words23 = _mm256_packs_epi32(quantize8(x + k + 16), quantize8(x + k + 24));
      const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(words01, words23), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + k), bytes);
    }
  }
#endif
  for (; k + W <= K; k += W) {
    Vec t = vec::load(x + k) * inverse + offset;
    t = t < zero ? zero : t;
    t = t > top ? top : t;
    const Byte bytes = __builtin_convertvector(__builtin_convertvector(t, Int), Byte);
    std::memcpy(p + k, &bytes, W);
  }
  for (; k < K; ++k) {
    const float t = std::clamp(x[k] * inverse + offset, 0.f, kActivationLevels + 0.5f);
    p[k] = static_cast<std::uint8_t>(static_cast<std::int32_t>(t));
  }
  return true;
}

/// C (M, N) = P (M, K) Q^T in int32 for a few rows (a decoding step): Q (N, K) read once, in
/// blocks of 4 of its rows, each block multiplied with every row of P while it sits in L1.
/// With AVX2: u8 x s8 pairs summed in 16 bits (exact: P <= 127), then in 32 bits; with VNNI,
/// four products summed into 32 bits by one instruction.
void skinny_u8s8s32(std::size_t M, std::size_t N, std::size_t K, const std::uint8_t* P, const std::int8_t* Q,
                    std::int32_t* C) {
  constexpr std::size_t kCols = 4, kBlock = 64;
  // An int8 multiply-add costs a small part of what kParallelWork counts (one VNNI instruction
  // does 64): measured on 2 cores (Zen 5), a second thread pays from about a million of them
  // (4 x 1024 x 256: 1.2x; 1 x 256 x 256 ran at 0.3x, 8 x 256 x 256 at 0.86x).
  constexpr std::size_t kMultiplyAddsPerWork = 32;
  const std::size_t blocks = (N + kBlock - 1) / kBlock;
  parallel_rows(blocks, kBlock * K * M / kMultiplyAddsPerWork, [&](std::size_t block) {
    const std::size_t end = std::min(N, (block + 1) * kBlock);
    for (std::size_t n = block * kBlock; n < end; n += kCols) {
      const std::size_t cols = std::min(kCols, end - n);
      for (std::size_t m = 0; m < M; ++m) {
        const std::uint8_t* p = P + m * K;
        std::int32_t sums[kCols] = {0, 0, 0, 0};
        std::size_t k = 0;
#if defined(__AVX2__)
        if (cols == kCols) {
#if !(defined(__AVX512VNNI__) && defined(__AVX512VL__))
          const __m256i ones = _mm256_set1_epi16(1);
#endif
          __m256i acc[kCols];
          for (std::size_t c = 0; c < kCols; ++c) acc[c] = _mm256_setzero_si256();
          for (; k + 32 <= K; k += 32) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k));
            for (std::size_t c = 0; c < kCols; ++c) {
              const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(Q + (n + c) * K + k));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
              acc[c] = _mm256_dpbusd_epi32(acc[c], a, b);  // VNNI: four u8 x s8 products into each lane
#else
              acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
#endif
            }
          }
          // The four columns' lanes added at once: two levels of pair sums, then the two halves.
          const __m256i pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
          const __m128i four = _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(sums), four);
        }
#endif
        for (std::size_t c = 0; c < cols; ++c) {
          const std::int8_t* q = Q + (n + c) * K;
          for (std::size_t j = k; j < K; ++j) sums[c] += static_cast<std::int32_t>(p[j]) * q[j];
        }
        for (std::size_t c = 0; c < cols; ++c) C[m * N + n + c] = sums[c];
      }
    }
  });
}

}  // namespace

QuantizedWeight quantize_weight(const float* w, std::size_t rows, std::size_t cols) {
  QuantizedWeight q;
  q.rows = rows;
  q.cols = cols;
  q.values.resize(rows * cols);
  q.scales.resize(rows);
  q.row_sums.resize(rows);
  for (std::size_t n = 0; n < rows; ++n) {
    const float* row = w + n * cols;
    float largest = 0.f;
    for (std::size_t k = 0; k < cols; ++k) {
      if (!std::isfinite(row[k])) {
        throw Error(fmt::format("quantize_weight: weight ({}, {}) is {}: only finite weights quantize", n, k, row[k]));
      }
      largest = std::max(largest, std::abs(row[k]));
    }
    const float scale = largest / kWeightLevels;
    const float inverse = largest > 0.f ? 1.f / scale : 0.f;
    std::int32_t sum = 0;
    for (std::size_t k = 0; k < cols; ++k) {
      const long v = std::clamp<long>(std::lrint(row[k] * inverse), -127, 127);
      q.values[n * cols + k] = static_cast<std::int8_t>(v);
      sum += static_cast<std::int32_t>(v);
    }
    q.scales[n] = scale;
    q.row_sums[n] = sum;
  }
  return q;
}

void dequantize_weight(const QuantizedWeight& w, float* out) {
  for (std::size_t n = 0; n < w.rows; ++n) {
    for (std::size_t k = 0; k < w.cols; ++k) out[n * w.cols + k] = w.scales[n] * static_cast<float>(w.values[n * w.cols + k]);
  }
}

void quantized_linear(const float* x, std::size_t M, const QuantizedWeight& w, std::size_t first, std::size_t count,
                      const float* bias, float* y, bool relu) {
  if (first + count > w.rows) {
    throw Error(fmt::format("quantized_linear: rows [{}, {}) of a weight of {} rows", first, first + count, w.rows));
  }
  const std::size_t K = w.cols;
  if (M == 0 || count == 0) return;
  thread_local std::vector<std::uint8_t> p;
  thread_local std::vector<std::int32_t> c;
  thread_local std::vector<float> a;
  thread_local std::vector<std::int32_t> z;
  thread_local std::vector<char> finite;
  // Grown, never shrunk: the layers of a step alternate between widths, and a vector grown again
  // would zero its new part at every call.
  const auto at_least = [](auto& buffer, std::size_t n) {
    if (buffer.size() < n) buffer.resize(n);
  };
  at_least(p, M * K);
  at_least(c, M * count);
  at_least(a, M);
  at_least(z, M);
  at_least(finite, M);
  // The buffers are this thread's: the parallel loops reach them through these pointers (in a
  // worker thread the thread_local names would mean the worker's own, empty, buffers).
  std::uint8_t* quantized = p.data();
  std::int32_t* products = c.data();
  float* row_scales = a.data();
  std::int32_t* zero_points = z.data();
  char* row_finite = finite.data();
  const float* scales = w.scales.data() + first;
  const std::int32_t* sums = w.row_sums.data() + first;
  const auto dequantize = [&](std::size_t m) {
    float* out = y + m * count;
    const std::int32_t* acc = products + m * count;
    if (!row_finite[m]) {
      std::fill(out, out + count, relu ? 0.f : std::numeric_limits<float>::quiet_NaN());
      return;
    }
    const float am = row_scales[m];
    const std::int32_t zm = zero_points[m];
    for (std::size_t n = 0; n < count; ++n) {
      const float v = am * scales[n] * static_cast<float>(acc[n] - zm * sums[n]) + (bias ? bias[n] : 0.f);
      out[n] = relu ? (v > 0.f ? v : 0.f) : v;
    }
  };
  // Many rows on more than one thread: each thread quantizes, multiplies and dequantizes its own
  // block of rows in one parallel region (the GEMM library on one thread inside it). Its
  // products never leave its core, and the next op's parallel_rows, split the same way, finds
  // the outputs where they were written. Measured on 2 cores (Zen 5, VNNI) at 128 rows, a beam
  // search's step: the int8 products 10-15% faster than a GEMM split by columns between
  // quantization and dequantization split by rows (docs/PERFORMANCE.md).
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (M >= kRowSplitRows && threads > 1 && M * count * K >= kRowSplitWork) {
#pragma omp parallel num_threads(threads)
    {
      const auto team = static_cast<std::size_t>(omp_get_num_threads());
      const auto t = static_cast<std::size_t>(omp_get_thread_num());
      const std::size_t block = (M + team - 1) / team;  // as schedule(static) splits M rows
      const std::size_t m0 = std::min(M, t * block), m1 = std::min(M, m0 + block);
      for (std::size_t m = m0; m < m1; ++m) {
        row_finite[m] = quantize_row(x + m * K, K, quantized + m * K, row_scales[m], zero_points[m]);
      }
      if (m1 > m0) {
        gemm_u8s8s32(m1 - m0, count, K, quantized + m0 * K, w.values.data() + first * K, products + m0 * count);
      }
      for (std::size_t m = m0; m < m1; ++m) dequantize(m);
    }
    return;
  }
  parallel_rows(M, K, [&](std::size_t m) {
    row_finite[m] = quantize_row(x + m * K, K, quantized + m * K, row_scales[m], zero_points[m]);
  });
  // A few rows: the weight read once, by our kernel; more: the GEMM library's.
  if (M <= kSkinnyRows) skinny_u8s8s32(M, count, K, quantized, w.values.data() + first * K, products);
  else gemm_u8s8s32(M, count, K, quantized, w.values.data() + first * K, products);
  parallel_rows(M, count, dequantize);
}

std::vector<float> quantized_error_bound(const float* x, std::size_t M, const float* w, const QuantizedWeight& q,
                                         std::size_t first, std::size_t count) {
  const std::size_t K = q.cols;
  std::vector<float> bound(M * count);
  for (std::size_t m = 0; m < M; ++m) {
    float lo = 0.f, hi = 0.f;
    for (std::size_t k = 0; k < K; ++k) lo = std::min(lo, x[m * K + k]), hi = std::max(hi, x[m * K + k]);
    const double a = (hi - lo) / kActivationLevels;
    double x_abs = 0;
    for (std::size_t k = 0; k < K; ++k) x_abs += std::abs(x[m * K + k]);
    for (std::size_t n = 0; n < count; ++n) {
      const std::size_t row = first + n;
      const double s = q.scales[row];
      double w_abs = 0;
      for (std::size_t k = 0; k < K; ++k) w_abs += std::abs(w[row * K + k]);
      bound[m * count + n] = static_cast<float>((x_abs * s + w_abs * a + K * a * s / 2) / 2);
    }
  }
  return bound;
}

}  // namespace xgrad::kernels
