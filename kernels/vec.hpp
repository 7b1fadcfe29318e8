// One vector register of floats for the register-blocked kernels (small_gemm, skinny_linear, the
// row sums), through GCC's vector extensions: W floats, the width of the ISA the library is
// compiled for (AVX-512: 16, with 32 registers; AVX: 8, with 16; else 4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#if defined(__AVX__)
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
/// W 32-bit integers: a Vec's bits converted lane by lane, or the lane indices of a shuffle.
typedef std::int32_t IntVec __attribute__((vector_size(W * sizeof(std::int32_t))));

inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}

inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(Vec)); }

/// v, loaded once, kept in a register for its uses: left alone, the compiler may fold the load into
/// each multiply-add that reads v, loading it once per use. Loads are the scarcer unit (on Zen 5,
/// about one 512-bit load a cycle against two multiply-adds): a 4-row block of packed_linear ran
/// at 78 GFLOP/s on one core with its panel vectors loaded 4 times, at 190 with them loaded once.
inline void keep_in_register(Vec& v) {
#if defined(__AVX512F__)
  asm("" : "+v"(v));
#elif defined(__SSE__)
  asm("" : "+x"(v));
#endif
}

/// The first n <= W floats at p, the other lanes `fill` (nothing read past p + n).
inline Vec load(const float* p, std::size_t n, float fill) {
  if (n == W) return load(p);
#if defined(__AVX512F__)
  return Vec(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<__mmask16>((1u << n) - 1), p));
#else
  Vec v = Vec{} + fill;
  std::memcpy(&v, p, n * sizeof(float));
  return v;
#endif
}

/// The first n <= W lanes of v to p (nothing written past p + n).
inline void store(float* p, Vec v, std::size_t n) {
  if (n == W) return store(p, v);
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), __m512(v));
#else
  std::memcpy(p, &v, n * sizeof(float));
#endif
}

/// f(i, n) for each run of n <= W lanes of a row of `size` elements: whole vectors, then the
/// tail once. Written with the loads and stores of n lanes above, every element of a row goes
/// through the same vector code, and with n == W known in the loop their checks fold away.
template <class F>
inline void over_lanes(std::size_t size, F f) {
  std::size_t i = 0;
  for (; i + W <= size; i += W) f(i, W);
  if (i < size) f(i, size - i);
}

/// over_lanes with two sets of sums: f(i, n, half) for whole vectors in pairs, the first of a
/// pair with half 0 and the second with half 1, then the rest as over_lanes does, with half 0. A
/// kernel whose sums wait on their adds keeps one set per half, (half ? s1 : s0) += ...: the
/// second set's adds fill the first's waits. half is a compile-time constant (f takes `auto
/// half`). Two variables, not an array indexed by half: GCC keeps an array of vectors in memory.
/// The order of the sums is fixed by the row's length alone.
template <class F>
inline void over_lane_pairs(std::size_t size, F f) {
  constexpr std::integral_constant<std::size_t, 0> first;
  constexpr std::integral_constant<std::size_t, 1> second;
  std::size_t i = 0;
  for (; i + 2 * W <= size; i += 2 * W) {
    f(i, W, first);
    f(i + W, W, second);
  }
  over_lanes(size - i, [&](std::size_t k, std::size_t lanes) { f(i + k, lanes, first); });
}

/// The larger of acc and v in each lane, where v is NaN acc: a NaN never wins (callers that care
/// count NaNs apart), so a running maximum starts at -inf and stays a number.
inline Vec max(Vec acc, Vec v) { return v > acc ? v : acc; }

namespace detail {
/// Bit i set where lane i of v is above t, or at least t with kOrEqual (a NaN lane never is).
template <bool kOrEqual>
inline unsigned lanes_compared(Vec v, float t) {
#if defined(__AVX512F__)
  return _mm512_cmp_ps_mask(__m512(v), _mm512_set1_ps(t), kOrEqual ? _CMP_GE_OQ : _CMP_GT_OQ);
#elif defined(__AVX__)
  return static_cast<unsigned>(
      _mm256_movemask_ps(_mm256_cmp_ps(__m256(v), _mm256_set1_ps(t), kOrEqual ? _CMP_GE_OQ : _CMP_GT_OQ)));
#else
  unsigned bits = 0;
  for (std::size_t i = 0; i < W; ++i) bits |= ((kOrEqual ? v[i] >= t : v[i] > t) ? 1u : 0u) << i;
  return bits;
#endif
}
}  // namespace detail

/// Bit i set where lane i of v is above t (a NaN lane is not): the lanes a scan must look at.
inline unsigned above(Vec v, float t) { return detail::lanes_compared<false>(v, t); }

/// Bit i set where lane i of v is at least t (a NaN lane is not).
inline unsigned at_least(Vec v, float t) { return detail::lanes_compared<true>(v, t); }

namespace detail {
/// exp of each lane (vec::exp), with kLarge the handling of x above 88 (+inf, and huge x).
template <bool kLarge>
inline Vec exp(Vec x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // ln 2 = kLn2Hi + kLn2Lo, kLn2Hi with few mantissa bits
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kLow = -87.33f;
  constexpr float kHigh = 88.0f;
#if defined(__AVX512F__)
  // 2^(j / 16) for j = 0..15, each the float nearest: one register, looked up by vpermps.
  alignas(64) static constexpr float kPowers[16] = {
      1.000000000e+00f, 1.044273734e+00f, 1.090507746e+00f, 1.138788581e+00f, 1.189207077e+00f, 1.241857767e+00f,
      1.296839595e+00f, 1.354255557e+00f, 1.414213538e+00f, 1.476826191e+00f, 1.542210817e+00f, 1.610490322e+00f,
      1.681792855e+00f, 1.756252170e+00f, 1.834008098e+00f, 1.915206552e+00f};
  constexpr float kRound = 786432.f;  // 1.5 * 2^19: adding it rounds to a multiple of 1/16
  __m512 xc = __m512(x);
  if constexpr (kLarge) xc = _mm512_min_ps(_mm512_set1_ps(kHigh + 1.f), xc);  // +inf to 89 (still overflows); NaN stays
  // t = 1.5 * 2^19 + k / 16, k = round(16 x / ln 2): k's last four bits are t's last four.
  const __m512 t = _mm512_fmadd_ps(xc, _mm512_set1_ps(kLog2e), _mm512_set1_ps(kRound));
  const __m512 k16 = _mm512_sub_ps(t, _mm512_set1_ps(kRound));  // k / 16, exactly
  const __m512 r = _mm512_fnmadd_ps(k16, _mm512_set1_ps(kLn2Lo), _mm512_fnmadd_ps(k16, _mm512_set1_ps(kLn2Hi), xc));
  // exp(r) - 1 = r + r^2 / 2 + r^3 / 6 (|r| <= ln(2) / 32: the next term is below 1e-8).
  const __m512 q = _mm512_mul_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(1.f / 6), r, _mm512_set1_ps(0.5f)), r,
                                                 _mm512_set1_ps(1.f)),
                                 r);
  const __m512 power = _mm512_permutexvar_ps(_mm512_castps_si512(t), _mm512_load_ps(kPowers));  // 2^(k mod 16 / 16)
  const __mmask16 kept = _mm512_cmp_ps_mask(__m512(x), _mm512_set1_ps(kLow), _CMP_NLT_UQ);    // x >= kLow, or NaN
  // 2^(k / 16) exp(r): 2^floor(k / 16) times power (1 + q), the latter in one rounding.
  return Vec(_mm512_maskz_scalef_ps(kept, _mm512_fmadd_ps(power, q, power), k16));
#else
  constexpr float kC[7] = {1.f, 1.f, 4.999999106e-01f, 1.666641980e-01f, 4.166822881e-02f, 8.374856785e-03f, 1.383679337e-03f};
  const auto polynomial = [&](Vec r) {  // sum_i kC[i] r^i, by Horner's rule
    Vec p = Vec{} + kC[6];
    for (int i = 5; i >= 0; --i) p = p * r + kC[i];
    return p;
  };
  typedef unsigned UInt __attribute__((vector_size(W * sizeof(unsigned))));  // unsigned: shifts wrap, as wanted
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  Vec xc = x;
  if constexpr (kLarge) xc = x > kHigh ? kHigh : x;  // NaN stays
  const Vec t = xc * kLog2e + kRound;                // the integer k sits in t's low mantissa bits
  const Vec k = t - kRound;
  const Vec r = (xc - k * kLn2Hi) - k * kLn2Lo;
  const UInt k_int = UInt(t) - __builtin_bit_cast(unsigned, kRound);  // a cast between vector types keeps the bits
  // 2^k from its exponent bits; outside [kLow, kHigh] garbage, replaced below.
  Vec y = polynomial(r) * Vec((k_int + 127u) << 23);
  if constexpr (kLarge) y = x > kHigh ? std::numeric_limits<float>::infinity() : y;
  return x < kLow ? 0.f : y;  // -inf too; a NaN x has made y NaN
#endif
}
}  // namespace detail

/// exp of each lane, within 1.1 ulp (1.07 at worst over every float). Exactly 0 below -87.33
/// (exp(x) < FLT_MIN) and for -inf, so that a masked score gets no weight; +inf above 88.72 (with
/// AVX-512; from 88 without); NaN stays NaN.
/// - With AVX-512: exp(x) = 2^(k / 16) exp(r), k = round(16 x / ln 2), |r| <= ln(2) / 32;
///   2^(k mod 16 / 16) from a table of 16 in one register, exp(r) - 1 by a polynomial of degree
///   3, 2^floor(k / 16) applied by vscalefps: eleven instructions.
/// - Without: exp(x) = 2^k exp(r), k = round(x / ln 2), |r| <= ln(2) / 2; exp(r) by a
///   polynomial of degree 6 fitted to exp on that interval (relative error 2e-8, below half an
///   ulp; the float roundings add the rest), 2^k built from its exponent bits.
inline Vec exp(Vec x) { return detail::exp<true>(x); }

/// exp of lanes that are at most 0 (or -inf, or NaN): x - max in a softmax, x - log sum exp in a
/// cross-entropy. exp's numbers, without the clamp that makes x above 88 overflow cleanly: one
/// instruction fewer of the dozen or so an exponential costs, in loops the exponentials bound.
inline Vec exp_nonpositive(Vec x) { return detail::exp<false>(x); }

#if defined(__AVX512F__)
/// add_exp's a: log2 e rounded to a float, times ln 2 (1 - 1.33e-8).
constexpr double kAddExpScale = 1.44269502162933349609375 * 0.693147180559945309417;
#else
constexpr double kAddExpScale = 1.0;
#endif

/// sum + exp(a x) in each lane, a = kAddExpScale: for exponentials that are only summed, as a
/// cross-entropy's row's sum of exp(x_i) taken without first subtracting the row's maximum. With
/// AVX-512, a is 1 - 1.33e-8 and log(sum) / a is the row's log-sum-exp within |1 - a| H <= 1.33e-8
/// ln C (H the entropy of the row's softmax, C its length); without, a is 1.
/// - Each term is within 3 ulp of exp(a x) from -87.3 to 88.7 (88 without AVX-512), then 0 down
///   to about -2e26 (its denormals, from -87.3 to -104, lose bits). It overflows above that; +inf
///   and NaN make the sum +inf or NaN, and so, with AVX-512, do -inf and x below -2e26 (without,
///   they add 0). A caller that sums tests the sum, and takes a row whose sum is not finite, or
///   so small that its terms were denormal, again with its maximum subtracted.
/// - With AVX-512: exp(a x) = 2^(x L) (L log2 e rounded) = 2^(k / 32) 2^r, k = round(32 x L),
///   r = x L - k / 32 exactly (|r| <= 1 / 64): 2^(k mod 32 / 32) from a table of 32 in two registers,
///   scaled by 2^floor(k / 32) (vscalefps), times 2^r by a polynomial of degree 2 (a near-minimax
///   fit, 5.4e-8), added to the sum in the same multiply-add: eight instructions and a load.
///   Taking x L in one rounding-free multiply-add is what lets it do without the maximum.
/// - Without: sum + exp(x).
inline Vec add_exp(Vec sum, Vec x) {
#if defined(__AVX512F__)
  alignas(64) static constexpr float kPowers[32] = {  // 2^(j / 32) for j = 0..31, each the float nearest
      1.000000000e+00f, 1.021897197e+00f, 1.044273734e+00f, 1.067140460e+00f, 1.090507746e+00f, 1.114386797e+00f,
      1.138788581e+00f, 1.163724899e+00f, 1.189207077e+00f, 1.215247393e+00f, 1.241857767e+00f, 1.269050956e+00f,
      1.296839595e+00f, 1.325236678e+00f, 1.354255557e+00f, 1.383909941e+00f, 1.414213538e+00f, 1.445180774e+00f,
      1.476826191e+00f, 1.509164453e+00f, 1.542210817e+00f, 1.575980902e+00f, 1.610490322e+00f, 1.645755529e+00f,
      1.681792855e+00f, 1.718619347e+00f, 1.756252170e+00f, 1.794709086e+00f, 1.834008098e+00f, 1.874167681e+00f,
      1.915206552e+00f, 1.957144141e+00f};
  constexpr float kLog2e = 1.44269504088896341f;  // L
  constexpr float kRound = 393216.f;              // 1.5 * 2^18: adding it rounds to a multiple of 1/32
  const __m512 xv = __m512(x);
  // t = 1.5 * 2^18 + k / 32: k's last five bits are t's last five.
  const __m512 t = _mm512_fmadd_ps(xv, _mm512_set1_ps(kLog2e), _mm512_set1_ps(kRound));
  const __m512 k32 = _mm512_sub_ps(t, _mm512_set1_ps(kRound));  // k / 32, exactly
  const __m512 r = _mm512_fmsub_ps(xv, _mm512_set1_ps(kLog2e), k32);  // x L - k / 32, one rounding
  // 2^r = 1 + r (a1 + a2 r): exp's fit on |r| <= ln(2) / 64, 1 + 1.000014663 s + 0.5000036359 s^2, at s = r ln 2.
  const __m512 two_r = _mm512_fmadd_ps(
      _mm512_fmadd_ps(_mm512_set1_ps(2.4022825062e-01f), r, _mm512_set1_ps(6.9315731525e-01f)), r, _mm512_set1_ps(1.f));
  const __m512 power = _mm512_scalef_ps(  // 2^(k / 32) = 2^floor(k / 32) 2^(k mod 32 / 32)
      _mm512_permutex2var_ps(_mm512_load_ps(kPowers), _mm512_castps_si512(t), _mm512_load_ps(kPowers + 16)), k32);
  return Vec(_mm512_fmadd_ps(power, two_r, __m512(sum)));
#else
  return sum + exp(x);
#endif
}

/// The sum of the W lanes: in lane order, or with AVX-512 as a tree (halves added, four times),
/// whose four dependent adds cost less than fifteen lane by lane.
inline float lanes_sum(Vec v) {
#if defined(__AVX512F__)
  return _mm512_reduce_add_ps(__m512(v));
#else
  float s = 0.f;
  for (std::size_t i = 0; i < W; ++i) s += v[i];
  return s;
#endif
}

/// The largest of the W lanes (none of them NaN).
inline float lanes_max(Vec v) {
#if defined(__AVX512F__)
  return _mm512_reduce_max_ps(__m512(v));
#else
  float m = v[0];
  for (std::size_t i = 1; i < W; ++i) m = v[i] > m ? v[i] : m;
  return m;
#endif
}

/// Lane l of the result: v[index[l]], a permute within the register. GCC's __builtin_shuffle
/// takes a variable index; Clang's shuffles take constants only, so there the permute
/// instruction (AVX-512, AVX2) or lane by lane.
inline Vec permute(Vec v, IntVec index) {
#if !defined(__clang__)
  return __builtin_shuffle(v, index);
#elif defined(__AVX512F__)
  return Vec(_mm512_permutexvar_ps(__m512i(index), __m512(v)));
#elif defined(__AVX2__)
  return Vec(_mm256_permutevar8x32_ps(__m256(v), __m256i(index)));
#else
  Vec r;
  for (std::size_t l = 0; l < W; ++l) r[l] = v[index[l]];
  return r;
#endif
}

/// Lane i of v in every lane: a shuffle within the register, where v[i] would go through memory.
inline Vec broadcast_lane(Vec v, std::size_t i) { return permute(v, IntVec{} + static_cast<std::int32_t>(i)); }

/// Lane l of the result: op over the lanes of v whose index is l mod `stride` (a power of two
/// dividing W): v combined with itself rotated by stride, 2 stride, ... lanes.
template <class Op>
inline Vec lanes_fold(Vec v, std::size_t stride, Op op) {
  for (std::size_t step = stride; step < W; step *= 2) {
    IntVec rotation;
    for (std::size_t l = 0; l < W; ++l) rotation[l] = static_cast<std::int32_t>((l + step) % W);
    v = op(v, permute(v, rotation));
  }
  return v;
}

namespace detail {
/// Lane i of the result: op over the lanes of v[i], for all W vectors at once, as a tree: each
/// level shuffles the vectors in pairs so that op, once per pair, halves their number and the
/// lanes each covers. AVX-512: four levels of two shuffles and an op, 45 instructions for 16
/// rows; AVX: three levels, 21 for 8. op is exact for a maximum; for a sum it fixes the order.
template <class Op>
inline Vec lanes_tree(const Vec (&v)[W], Op op) {
#if defined(__AVX512F__)
  const auto f = [&](__m512 x, __m512 y) { return __m512(op(Vec(x), Vec(y))); };
  // Level 1, v[2i] and v[2i+1]: in each 128-bit block, lanes 0 and 2 hold v[2i]'s pairs, 1 and 3 v[2i+1]'s.
  __m512 a[8];
  for (int i = 0; i < 8; ++i) {
    a[i] = f(_mm512_unpacklo_ps(__m512(v[2 * i]), __m512(v[2 * i + 1])),
             _mm512_unpackhi_ps(__m512(v[2 * i]), __m512(v[2 * i + 1])));
  }
  // Level 2: lane j of each 128-bit block of b[i] holds v[4i + j]'s over that block.
  __m512 b[4];
  for (int i = 0; i < 4; ++i) {
    b[i] = f(_mm512_shuffle_ps(a[2 * i], a[2 * i + 1], 0x44), _mm512_shuffle_ps(a[2 * i], a[2 * i + 1], 0xEE));
  }
  // Levels 3 and 4: the four blocks combined, block k of the result holding v[4k .. 4k + 3]'s.
  __m512 c[2];
  for (int i = 0; i < 2; ++i) {
    c[i] = f(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88), _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
  }
  return Vec(f(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xDD)));
#elif defined(__AVX__)
  const auto f = [&](__m256 x, __m256 y) { return __m256(op(Vec(x), Vec(y))); };
  __m256 a[4], b[2];
  for (int i = 0; i < 4; ++i) {  // in each 128-bit half, lanes 0 and 2 hold v[2i]'s pairs, 1 and 3 v[2i+1]'s
    a[i] = f(_mm256_unpacklo_ps(__m256(v[2 * i]), __m256(v[2 * i + 1])),
             _mm256_unpackhi_ps(__m256(v[2 * i]), __m256(v[2 * i + 1])));
  }
  for (int i = 0; i < 2; ++i) {  // lane j of each half of b[i]: v[4i + j]'s over that half
    b[i] = f(_mm256_shuffle_ps(a[2 * i], a[2 * i + 1], 0x44), _mm256_shuffle_ps(a[2 * i], a[2 * i + 1], 0xEE));
  }
  return Vec(f(_mm256_permute2f128_ps(b[0], b[1], 0x20), _mm256_permute2f128_ps(b[0], b[1], 0x31)));
#else
  Vec out;
  for (std::size_t i = 0; i < W; ++i) {
    float r = v[i][0];
    for (std::size_t j = 1; j < W; ++j) r = op(Vec{} + r, Vec{} + v[i][j])[0];
    out[i] = r;
  }
  return out;
#endif
}
}  // namespace detail

/// Lane i of the result: the sum of the lanes of v[i], for all W vectors at once. With AVX, a
/// tree of horizontal adds (three levels, then the two halves): 9 instructions for 8 sums; with
/// AVX-512, lanes_tree: 45 for 16.
inline Vec lanes_sums(const Vec (&v)[W]) {
#if defined(__AVX512F__)
  return detail::lanes_tree(v, [](Vec x, Vec y) { return x + y; });
#elif defined(__AVX__)
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

/// Lane i of the result: the largest lane of v[i] (none of them NaN), for all W vectors at once.
inline Vec lanes_maxes(const Vec (&v)[W]) {
  return detail::lanes_tree(v, [](Vec x, Vec y) { return x > y ? x : y; });
}

/// The W x W block of v transposed in place: lane j of v[i] becomes lane i of v[j]. With AVX,
/// three rounds of shuffles (pairs, quads, then the two halves): 24 instructions. With AVX-512,
/// the same two rounds within each 128-bit block, then two rounds moving whole blocks: 64.
inline void transpose(Vec (&v)[W]) {
#if defined(__AVX512F__)
  __m512 a[16], b[16];
  for (int i = 0; i < 16; i += 2) {  // a[i], a[i+1]: lanes of rows i and i+1 interleaved
    a[i] = _mm512_unpacklo_ps(__m512(v[i]), __m512(v[i + 1]));
    a[i + 1] = _mm512_unpackhi_ps(__m512(v[i]), __m512(v[i + 1]));
  }
  for (int i = 0; i < 16; i += 4) {  // block k of b[i + j]: column 4k + j of rows i .. i + 3
    b[i] = _mm512_shuffle_ps(a[i], a[i + 2], 0x44);
    b[i + 1] = _mm512_shuffle_ps(a[i], a[i + 2], 0xEE);
    b[i + 2] = _mm512_shuffle_ps(a[i + 1], a[i + 3], 0x44);
    b[i + 3] = _mm512_shuffle_ps(a[i + 1], a[i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    // Blocks 0 and 2 (a[j]), 1 and 3 (a[j + 4]) of rows 0-7, then of rows 8-15 (a[j + 8], a[j + 12]).
    a[j] = _mm512_shuffle_f32x4(b[j], b[j + 4], 0x88);
    a[j + 4] = _mm512_shuffle_f32x4(b[j], b[j + 4], 0xDD);
    a[j + 8] = _mm512_shuffle_f32x4(b[j + 8], b[j + 12], 0x88);
    a[j + 12] = _mm512_shuffle_f32x4(b[j + 8], b[j + 12], 0xDD);
  }
  for (int j = 0; j < 4; ++j) {  // column 4k + j: block k of rows 0-3, 4-7, 8-11, 12-15
    v[j] = Vec(_mm512_shuffle_f32x4(a[j], a[j + 8], 0x88));
    v[j + 8] = Vec(_mm512_shuffle_f32x4(a[j], a[j + 8], 0xDD));
    v[j + 4] = Vec(_mm512_shuffle_f32x4(a[j + 4], a[j + 12], 0x88));
    v[j + 12] = Vec(_mm512_shuffle_f32x4(a[j + 4], a[j + 12], 0xDD));
  }
#elif defined(__AVX__)
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
