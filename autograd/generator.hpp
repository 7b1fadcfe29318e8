// Seeded random numbers: every random factory, initialiser and dropout mask draws from a
// Generator, so a run is reproduced exactly by its seed.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace xgrad {

/// A Mersenne Twister (mt19937_64) with the sampling done by xgrad itself, so that the same seed
/// gives the same numbers with every standard library.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 5489u) { manual_seed(seed); }

  void manual_seed(std::uint64_t seed);
  std::uint64_t initial_seed() const { return seed_; }

  /// Uniform in [0, 1) with 24 random bits (every float32 step in [0, 1) is reachable).
  float uniform();
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
  std::mt19937_64 engine_;
  std::uint64_t seed_ = 0;
  bool has_cached_normal_ = false;
  float cached_normal_ = 0.f;
};

/// The process-wide generator used when none is given.
Generator& default_generator();

/// Seeds the default generator, as torch::manual_seed.
void manual_seed(std::uint64_t seed);

}  // namespace xgrad
