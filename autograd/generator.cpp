#include <xgrad/autograd/generator.hpp>

#include <cmath>
#include <sstream>

#include <xgrad/autograd/error.hpp>

namespace xgrad {

void Generator::manual_seed(std::uint64_t seed) {
  seed_ = seed;
  engine_.seed(seed);
  has_cached_normal_ = false;
}

float Generator::uniform() {
  return static_cast<float>(engine_() >> 40) * (1.0f / 16777216.0f);  // top 24 bits / 2^24
}

float Generator::normal() {
  if (has_cached_normal_) {
    has_cached_normal_ = false;
    return cached_normal_;
  }
  // Box-Muller: u1 in (0, 1] so that log(u1) is finite.
  const double u1 = 1.0 - static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
  const double u2 = static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0);
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
    x = engine_();
  } while (x >= limit);
  return x % n;
}

std::string Generator::state() const {
  std::ostringstream out;
  out << seed_ << ' ' << has_cached_normal_ << ' ' << std::hexfloat << cached_normal_ << ' ' << engine_;
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::uint64_t seed;
  bool has_cached;
  std::string cached_text;
  std::mt19937_64 engine;
  in >> seed >> has_cached >> cached_text >> engine;
  if (in.fail()) throw Error("Generator::set_state: the state string is malformed");
  seed_ = seed;
  has_cached_normal_ = has_cached;
  cached_normal_ = std::strtof(cached_text.c_str(), nullptr);
  engine_ = engine;
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace xgrad
