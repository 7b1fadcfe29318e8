// Generator: the numbers and the state text of std::mt19937_64, single and bulk draws alike.
#include <doctest/doctest.h>

#include <random>
#include <sstream>
#include <vector>

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

TEST_CASE("bulk uniform_bits equals one draw at a time, across block boundaries") {
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{311}, std::size_t{312}, std::size_t{1000}}) {
    Generator bulk(7), single(7);
    bulk.uniform_bits();  // start mid-block
    single.uniform_bits();
    std::vector<std::uint32_t> drawn(n);
    bulk.uniform_bits(drawn.data(), n);
    for (std::size_t i = 0; i < n; ++i) CHECK(drawn[i] == single.uniform_bits());
    CHECK(bulk.uniform_bits() == single.uniform_bits());  // both continue alike
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
