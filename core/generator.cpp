#include <xgrad/core/generator.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include <xgrad/core/error.hpp>

namespace xgrad {

namespace {
constexpr std::size_t kShift = 156;                         // m, the middle word of the recurrence
constexpr std::uint64_t kUpper = ~std::uint64_t{0} << 31;  // the top 33 bits of a word
constexpr std::uint64_t kLower = ~kUpper;
constexpr std::uint64_t kMatrix = 0xb5026f5aa96619e9ULL;  // a, the twist matrix's last row

/// One word of the recurrence: far ^ ((upper(a) | lower(b)) A), A the twist matrix.
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b, std::uint64_t far) {
  const std::uint64_t y = (a & kUpper) | (b & kLower);
  return far ^ (y >> 1) ^ ((std::uint64_t{0} - (y & 1)) & kMatrix);
}
}  // namespace

void Generator::manual_seed(std::uint64_t seed) {
  seed_ = seed;
  words_[0] = seed;
  for (std::size_t i = 1; i < kWords; ++i) {
    words_[i] = 6364136223846793005ULL * (words_[i - 1] ^ (words_[i - 1] >> 62)) + i;
  }
  index_ = kWords;
  has_cached_normal_ = false;
}

void Generator::twist() {
  std::uint64_t* w = words_;
  // Each loop reads words ahead of the one it writes (not yet rewritten) or words the first loop
  // has rewritten, never one its own earlier iterations wrote: both vectorize.
#pragma omp simd
  for (std::size_t k = 0; k < kWords - kShift; ++k) w[k] = mix(w[k], w[k + 1], w[k + kShift]);
#pragma omp simd
  for (std::size_t k = kWords - kShift; k < kWords - 1; ++k) w[k] = mix(w[k], w[k + 1], w[k + kShift - kWords]);
  w[kWords - 1] = mix(w[kWords - 1], w[0], w[kShift - 1]);
  index_ = 0;
}

float Generator::normal() {
  if (has_cached_normal_) {
    has_cached_normal_ = false;
    return cached_normal_;
  }
  // Box-Muller: u1 in (0, 1] so that log(u1) is finite.
  const double u1 = 1.0 - static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
  const double u2 = static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * M_PI * u2;
  cached_normal_ = static_cast<float>(radius * std::sin(angle));
  has_cached_normal_ = true;
  return static_cast<float>(radius * std::cos(angle));
}

std::uint64_t Generator::integer(std::uint64_t n) {
  if (n == 0) throw Error("Generator::integer: the range [0, 0) is empty");
  // Rejection sampling: no modulo bias.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x;
  do {
    x = next();
  } while (x >= limit);
  return x % n;
}

// The text: seed, cached-normal flag, cached normal, then the engine as std::mt19937_64 writes
// it (its 312 words, then the index of the next word to read), all separated by spaces.
std::string Generator::state() const {
  std::ostringstream out;
  out << seed_ << ' ' << has_cached_normal_ << ' ' << std::hexfloat << cached_normal_ << std::dec;
  for (const std::uint64_t word : words_) out << ' ' << word;
  out << ' ' << index_;
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::uint64_t seed, words[kWords];
  std::size_t index;
  bool has_cached;
  std::string cached_text;
  in >> seed >> has_cached >> cached_text;
  for (std::uint64_t& word : words) in >> word;
  in >> index;
  if (in.fail() || index > kWords) throw Error("Generator::set_state: the state string is malformed");
  seed_ = seed;
  has_cached_normal_ = has_cached;
  cached_normal_ = std::strtof(cached_text.c_str(), nullptr);
  std::copy(words, words + kWords, words_);
  index_ = index;
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace xgrad
