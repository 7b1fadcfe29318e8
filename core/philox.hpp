// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel random
// numbers: as easy as 1, 2, 3" (SC 2011): four 32-bit words that are a function of a 128-bit
// counter and a 64-bit key, and of nothing else. Draw i of a stream is computed from i alone, so
// any thread draws any part of a dropout mask in any order, and the backward draws the same mask
// again instead of keeping it.
#pragma once

#include <cstdint>

namespace xgrad {

struct PhiloxBlock {
  std::uint32_t word[4];
};

/// The ten rounds. Each multiplies two counter words by the round constants (32 x 32 -> 64 bits),
/// crosses the halves with the other two words and the key, then bumps the key by the Weyl
/// constants (the golden ratio and sqrt(3) - 1, as 32-bit fractions).
inline PhiloxBlock philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3,
                                 std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = kM0 * c0, p1 = kM1 * c2;
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

/// A stream of 24-bit uniform draws, the same as Generator::uniform_bits() gives (a value k stands
/// for k / 2^24), addressed by index. Draws go in groups of 32 from 8 consecutive blocks, word by
/// word: draw i is word (i / 8) % 4 of block 8 (i / 32) + i % 8, shifted right by 8 (a block's
/// index in the first two counter words, low half first). Eight blocks side by side are one
/// 8-lane vector per word, so a vectorized loop stores its words as they come. The key comes
/// from a Generator (Generator::philox_stream), so a seed reproduces every stream.
struct PhiloxStream {
  std::uint64_t key = 0;

  static constexpr std::uint64_t kGroup = 32;  // draws per group of 8 blocks

  PhiloxBlock block(std::uint64_t b) const {
    return philox4x32_10(static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), 0, 0,
                         static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(key >> 32));
  }
  /// Draw i, in [0, 2^24).
  std::uint32_t bits(std::uint64_t i) const {
    const std::uint64_t group = i / kGroup, lane = i % 8, word = (i / 8) % 4;
    return block(8 * group + lane).word[word] >> 8;
  }
};

}  // namespace xgrad
