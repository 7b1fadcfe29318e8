// Seeded random numbers: every random factory, initialiser and dropout mask draws from a
// Generator, so a run is reproduced exactly by its seed.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include <xgrad/core/philox.hpp>

namespace xgrad {

/// A Mersenne Twister, MT19937-64: the numbers of std::mt19937_64 for the same seed, and its state
/// in the same text, with the sampling done by xgrad itself so that the same seed gives the same
/// numbers with every standard library. Long runs of draws (a dropout mask) come from the
/// counter-based streams it keys (philox_stream), which any thread can draw from.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 5489u) { manual_seed(seed); }

  void manual_seed(std::uint64_t seed);
  std::uint64_t initial_seed() const { return seed_; }

  /// Uniform in [0, 1) with 24 random bits (every float32 step in [0, 1) is reachable): k / 2^24
  /// for k = uniform_bits().
  float uniform() { return static_cast<float>(uniform_bits()) * (1.0f / 16777216.0f); }
  /// The 24 random bits behind uniform() (the top bits of one 64-bit draw): in [0, 2^24).
  std::uint32_t uniform_bits() { return static_cast<std::uint32_t>(next() >> 40); }
  /// uniform() < p exactly when uniform_bits() < uniform_threshold(p), for p in [0, 1]: a
  /// Bernoulli draw without the float conversion.
  static std::uint32_t uniform_threshold(float p) {
    return static_cast<std::uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0));
  }
  /// A counter-based stream keyed by the next 64-bit draw: one draw of this generator however
  /// long the stream, whose draws any thread can make in any order (dropout masks).
  PhiloxStream philox_stream() { return PhiloxStream{next()}; }
  /// Uniform in [low, high).
  float uniform(float low, float high) { return low + (high - low) * uniform(); }
  /// Standard normal, Box-Muller on two uniforms.
  float normal();
  /// Uniform integer in [0, n).
  std::uint64_t integer(std::uint64_t n);

  /// The whole state as text (the engine's state plus the cached normal), for exact resume.
  std::string state() const;
  void set_state(const std::string& state);

 private:
  static constexpr std::size_t kWords = 312;  // n, the state size of MT19937-64

  /// The next 64-bit draw.
  std::uint64_t next() {
    if (index_ >= kWords) twist();
    return temper(words_[index_++]);
  }
  static std::uint64_t temper(std::uint64_t z) {
    z ^= (z >> 29) & 0x5555555555555555ULL;
    z ^= (z << 17) & 0x71d67fffeda60000ULL;
    z ^= (z << 37) & 0xfff7eee000000000ULL;
    return z ^ (z >> 43);
  }
  /// Regenerates all 312 words (the recurrence), and starts reading them from the first.
  void twist();

  std::uint64_t words_[kWords];
  std::size_t index_ = kWords;
  std::uint64_t seed_ = 0;
  bool has_cached_normal_ = false;
  float cached_normal_ = 0.f;
};

/// The process-wide generator used when none is given.
Generator& default_generator();

/// Seeds the default generator, as torch::manual_seed.
void manual_seed(std::uint64_t seed);

}  // namespace xgrad
