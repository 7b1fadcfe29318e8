// Generator: the numbers and the state text of std::mt19937_64, and the Philox streams it keys.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <vector>

#include <xgrad/kernels/dropout.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

TEST_CASE("Generator draws the numbers of std::mt19937_64 with the same seed") {
  for (const std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{5489}, std::uint64_t{20240611}}) {
    Generator generator(seed);
    std::mt19937_64 reference(seed);
    for (int i = 0; i < 1000; ++i) {  // over three regenerations of the 312 state words
      CHECK(generator.uniform_bits() == static_cast<std::uint32_t>(reference() >> 40));
    }
    CHECK(generator.integer(1000) == reference() % 1000);
  }
}

TEST_CASE("uniform_threshold: uniform() < p exactly when uniform_bits() < uniform_threshold(p)") {
  for (const float p : {0.f, 0.1f, 0.5f, 0.3333f, 1.f}) {
    Generator a(3), b(3);
    for (int i = 0; i < 2000; ++i) CHECK((a.uniform() < p) == (b.uniform_bits() < Generator::uniform_threshold(p)));
  }
  CHECK(Generator::uniform_threshold(0.f) == 0u);
  CHECK(Generator::uniform_threshold(1.f) == 16777216u);
}

TEST_CASE("state() holds std::mt19937_64's text; set_state resumes exactly; bad text throws") {
  Generator generator(11);
  std::mt19937_64 reference(11);
  for (int i = 0; i < 400; ++i) generator.uniform_bits(), reference();
  std::ostringstream engine;
  engine << reference;
  const std::string state = generator.state();
  CHECK(state.substr(state.size() - engine.str().size()) == engine.str());

  Generator resumed(0);
  resumed.set_state(state);
  for (int i = 0; i < 500; ++i) CHECK(resumed.uniform_bits() == generator.uniform_bits());
  CHECK_THROWS_WITH_AS(resumed.set_state("1 0 0x0p+0 2 3"), doctest::Contains("Generator::set_state: the state string is malformed"), Error);
  std::string bad_index = state.substr(0, state.rfind(' ')) + " 313";
  CHECK_THROWS_WITH_AS(resumed.set_state(bad_index), doctest::Contains("Generator::set_state: the state string is malformed"), Error);
}

TEST_CASE("Philox4x32-10 gives Random123's known answers") {
  // The known-answer vectors of the Random123 distribution (counter words, key words, output).
  const PhiloxBlock zero = philox4x32_10(0, 0, 0, 0, 0, 0);
  CHECK(zero.word[0] == 0x6627e8d5u);
  CHECK(zero.word[1] == 0xe169c58du);
  CHECK(zero.word[2] == 0xbc57ac4cu);
  CHECK(zero.word[3] == 0x9b00dbd8u);
  const std::uint32_t f = 0xffffffffu;
  const PhiloxBlock ones = philox4x32_10(f, f, f, f, f, f);
  CHECK(ones.word[0] == 0x408f276du);
  CHECK(ones.word[1] == 0x41c83b0eu);
  CHECK(ones.word[2] == 0xa20bc7c6u);
  CHECK(ones.word[3] == 0x6d5451fdu);
  const PhiloxBlock pi = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  CHECK(pi.word[0] == 0xd16cfe09u);
  CHECK(pi.word[1] == 0x94fdccebu);
  CHECK(pi.word[2] == 0x5001e420u);
  CHECK(pi.word[3] == 0x24126ea1u);
}

TEST_CASE("a Philox stream: draw i from word (i / 8) % 4 of block 8 (i / 32) + i % 8, the same in bulk, uniform") {
  Generator generator(3);
  const PhiloxStream stream = generator.philox_stream();
  const std::uint64_t key = stream.key;
  const PhiloxBlock b29 = philox4x32_10(29, 0, 0, 0, static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(key >> 32));
  CHECK(stream.bits(32 * 3 + 8 * 2 + 5) == b29.word[2] >> 8);  // group 3, word 2, lane 5
  const std::uint64_t high = (std::uint64_t{1} << 34) + 1;  // the block index's high word is in the counter
  CHECK(stream.bits(4 * high) != stream.bits(4));
  // Bulk draws equal single ones, for every alignment of the first index and of the length.
  bool same = true;
  for (std::uint64_t first : {0u, 1u, 3u, 31u, 32u, 33u, 1021u}) {
    for (std::size_t n : {0u, 1u, 3u, 31u, 32u, 33u, 100u, 1000u}) {
      std::vector<std::uint32_t> out(n);
      kernels::philox_bits(stream, first, out.data(), n);
      for (std::size_t i = 0; i < n; ++i) same = same && out[i] == stream.bits(first + i);
    }
  }
  // Around block 2^32, where the block index's low word wraps: within a group of 8 blocks (8 | b)
  // it cannot, but 16 blocks drawn side by side span two groups.
  for (std::uint64_t group : {(std::uint64_t{1} << 29) - 1, (std::uint64_t{1} << 29) - 2}) {
    const std::uint64_t first = group * PhiloxStream::kGroup;
    std::vector<std::uint32_t> out(8 * PhiloxStream::kGroup);
    kernels::philox_bits(stream, first, out.data(), out.size());
    for (std::size_t i = 0; i < out.size(); ++i) same = same && out[i] == stream.bits(first + i);
  }
  CHECK(same);
  // 2^20 draws: mean (2^24 - 1) / 2 and each of 16 bins 1/16 of them, within 5 standard deviations.
  const std::size_t n = std::size_t{1} << 20;
  std::vector<std::uint32_t> draws(n);
  kernels::philox_bits(stream, 0, draws.data(), n);
  double sum = 0;
  std::vector<std::size_t> bins(16, 0);
  bool in_range = true;
  for (const std::uint32_t d : draws) {
    in_range = in_range && d < (1u << 24);
    sum += d;
    ++bins[(d >> 20) & 15];
  }
  CHECK(in_range);
  const double mean = sum / static_cast<double>(n), sd_mean = 16777216.0 / std::sqrt(12.0 * static_cast<double>(n));
  CHECK(std::abs(mean - 8388607.5) < 5 * sd_mean);
  const double expected = static_cast<double>(n) / 16, sd_bin = std::sqrt(expected * 15.0 / 16.0);
  for (const std::size_t b : bins) CHECK(std::abs(static_cast<double>(b) - expected) < 5 * sd_bin);
  // Another draw of the generator keys another stream.
  CHECK(generator.philox_stream().bits(0) != stream.bits(0));
}
