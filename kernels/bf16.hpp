// bfloat16: fp32's sign, exponent and top 7 mantissa bits. Rounding to it (nearest, ties to even)
// is what a bf16 input to a product keeps of an fp32 value: a relative error of at most 2^-8
// (8 significant bits: half a step of 2^-7 relative to the value's power of two).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace xgrad::kernels {

/// x rounded to the nearest bf16 value (ties to even), as an fp32 value; NaN stays NaN, infinities
/// and values that round past the largest bf16 become infinities.
inline float round_bf16(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) return x;  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  std::memcpy(&x, &bits, sizeof bits);
  return x;
}

/// out[i] = round_bf16(in[i]) for n values (in == out allowed).
void round_bf16(const float* in, std::size_t n, float* out);

}  // namespace xgrad::kernels
