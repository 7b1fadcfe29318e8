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
constexpr float kActivationLevels = 127.f;  // P in [0, 127]
/// Products of at least this many rows and multiply-adds go by rows over the threads, each
/// thread's rows quantized, multiplied and dequantized by that thread.
constexpr std::size_t kRowSplitRows = 64;
constexpr std::size_t kRowSplitWork = std::size_t{1} << 21;

/// One row of activations quantized: P (K), and its scale a and zero point z. False when the row
/// holds a non-finite value (its outputs are then NaN). Vectorized: min and max, then
/// P = floor(clamp(x / a + z, 0, 127) + 1/2), round half up (within a / 2 of x / a + z, as
/// the bound assumes).
bool quantize_row(const float* x, std::size_t K, std::uint8_t* p, float& a, std::int32_t& z) {
  using vec::Vec;
  using vec::W;
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
    const Byte bytes = __builtin_convertvector(__builtin_convertvector(t, vec::IntVec), Byte);
    std::memcpy(p + k, &bytes, W);
  }
  for (; k < K; ++k) {
    const float t = std::clamp(x[k] * inverse + offset, 0.f, kActivationLevels + 0.5f);
    p[k] = static_cast<std::uint8_t>(static_cast<std::int32_t>(t));
  }
  return true;
}

/// sum_j p[j] q[j] over [begin, end), one byte at a time: the bytes past whole vectors, and every
/// byte without AVX2.
inline std::int32_t dot_u8s8(const std::uint8_t* p, const std::int8_t* q, std::size_t begin, std::size_t end) {
  std::int32_t sum = 0;
  for (std::size_t j = begin; j < end; ++j) sum += static_cast<std::int32_t>(p[j]) * q[j];
  return sum;
}

#if defined(__AVX2__)
// u8 x s8 dot products, a vector of bytes at a time: with AVX512-VNNI 64 bytes, four products
// summed into each 32-bit lane by one instruction; with AVX2 32 bytes, pairs summed in 16 bits
// (exact: P <= 127), then in 32 bits (with VNNI on 256 bits, one instruction).
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
using Bytes = __m512i;
constexpr std::size_t kBytes = 64, kTileSums = 16;  // accumulators a tile keeps in registers
inline Bytes load_bytes(const void* p) { return _mm512_loadu_si512(p); }
inline Bytes zero_bytes() { return _mm512_setzero_si512(); }
inline Bytes dot_add(Bytes acc, Bytes a, Bytes b) { return _mm512_dpbusd_epi32(acc, a, b); }
inline __m256i halves_added(Bytes v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}
#else
using Bytes = __m256i;
constexpr std::size_t kBytes = 32, kTileSums = 8;
inline Bytes load_bytes(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline Bytes zero_bytes() { return _mm256_setzero_si256(); }
inline Bytes dot_add(Bytes acc, Bytes a, Bytes b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
#endif
}
inline __m256i halves_added(Bytes v) { return v; }
#endif

/// C[m0 + r][n + c] = P row m0 + r . Q row n + c for an R x kCols tile: the R x kCols sums in
/// registers, each of the tile's rows of P and of Q loaded once per vector of K (kTileSums chains
/// of multiply-adds in flight, where one row at a time has kCols); the lanes added at the end,
/// four sums at a time; the bytes past whole vectors one by one.
template <std::size_t R, std::size_t kCols>
void skinny_tile(const std::uint8_t* P, const std::int8_t* Q, std::size_t K, std::size_t N, std::size_t m0,
                 std::size_t n, std::int32_t* C) {
  static_assert(kCols % 4 == 0, "columns are summed four at a time");
  Bytes acc[R][kCols];
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t c = 0; c < kCols; ++c) acc[r][c] = zero_bytes();
  }
  std::size_t k = 0;
  for (; k + kBytes <= K; k += kBytes) {
    Bytes b[kCols];
    for (std::size_t c = 0; c < kCols; ++c) b[c] = load_bytes(Q + (n + c) * K + k);
    for (std::size_t r = 0; r < R; ++r) {
      const Bytes a = load_bytes(P + (m0 + r) * K + k);
      for (std::size_t c = 0; c < kCols; ++c) acc[r][c] = dot_add(acc[r][c], a, b[c]);
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    std::int32_t* out = C + (m0 + r) * N + n;
    for (std::size_t c = 0; c < kCols; c += 4) {  // two levels of pair sums, then the two halves
      const __m256i a0 = halves_added(acc[r][c]), a1 = halves_added(acc[r][c + 1]);
      const __m256i a2 = halves_added(acc[r][c + 2]), a3 = halves_added(acc[r][c + 3]);
      const __m256i pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
      const __m128i four = _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), four);
    }
    if (k == K) continue;
    for (std::size_t c = 0; c < kCols; ++c) out[c] += dot_u8s8(P + (m0 + r) * K, Q + (n + c) * K, k, K);
  }
}

/// skinny_tile over rows [m0, m0 + R) and columns [n0, n1): tiles of kCols columns, the columns
/// past them one by one.
template <std::size_t R, std::size_t kCols>
void skinny_rows(const std::uint8_t* P, const std::int8_t* Q, std::size_t K, std::size_t N, std::size_t m0,
                 std::size_t n0, std::size_t n1, std::int32_t* C) {
  std::size_t n = n0;
  for (; n + kCols <= n1; n += kCols) skinny_tile<R, kCols>(P, Q, K, N, m0, n, C);
  for (; n < n1; ++n) {
    for (std::size_t r = 0; r < R; ++r) C[(m0 + r) * N + n] = dot_u8s8(P + (m0 + r) * K, Q + n * K, 0, K);
  }
}
#endif

/// C (M, N) = P (M, K) Q^T in int32 for a few rows (a decoding step): Q (N, K) read once, in
/// blocks of kBlock of its rows over the threads; in a block, tiles of rows of P and of Q whose
/// sums fill the registers (one row: kTileSums / 2 columns; more: 4 columns of kTileSums / 4 rows).
void skinny_u8s8s32(std::size_t M, std::size_t N, std::size_t K, const std::uint8_t* P, const std::int8_t* Q,
                    std::int32_t* C) {
  constexpr std::size_t kBlock = 64;
  // An int8 multiply-add costs a small part of what kParallelWork counts (one VNNI instruction
  // does 64): measured on 2 cores (Zen 5), a second thread pays from about a million of them
  // (4 x 1024 x 256: 1.2x; 1 x 256 x 256 ran at 0.3x, 8 x 256 x 256 at 0.86x).
  constexpr std::size_t kMultiplyAddsPerWork = 32;
  const std::size_t blocks = (N + kBlock - 1) / kBlock;
  parallel_rows(blocks, kBlock * K * M / kMultiplyAddsPerWork, [&](std::size_t block) {
    const std::size_t n0 = block * kBlock, n1 = std::min(N, n0 + kBlock);
#if defined(__AVX2__)
    constexpr std::size_t kRows = kTileSums / 4;  // rows of a 4-column tile
    std::size_t m = 0;
    if (M == 1) skinny_rows<1, kTileSums / 2>(P, Q, K, N, 0, n0, n1, C), m = 1;
    for (; m + kRows <= M; m += kRows) skinny_rows<kRows, 4>(P, Q, K, N, m, n0, n1, C);
    for (; m < M; ++m) skinny_rows<1, 4>(P, Q, K, N, m, n0, n1, C);
#else
    for (std::size_t m = 0; m < M; ++m) {
      for (std::size_t n = n0; n < n1; ++n) C[m * N + n] = dot_u8s8(P + m * K, Q + n * K, 0, K);
    }
#endif
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
  const std::int8_t* weight = w.values.data() + first * K;  // (count, K)
  const float* scales = w.scales.data() + first;
  const std::int32_t* sums = w.row_sums.data() + first;
  const auto quantize = [&](std::size_t m) {
    row_finite[m] = quantize_row(x + m * K, K, quantized + m * K, row_scales[m], zero_points[m]);
  };
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
      for (std::size_t m = m0; m < m1; ++m) quantize(m);
      if (m1 > m0) gemm_u8s8s32(m1 - m0, count, K, quantized + m0 * K, weight, products + m0 * count);
      for (std::size_t m = m0; m < m1; ++m) dequantize(m);
    }
    return;
  }
  parallel_rows(M, K, quantize);
  // A few rows: the weight read once, by our kernel; more: the GEMM library's.
  if (M <= kSkinnyRows) skinny_u8s8s32(M, count, K, quantized, weight, products);
  else gemm_u8s8s32(M, count, K, quantized, weight, products);
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
