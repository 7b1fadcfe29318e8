// models::Sampler, the one next-token chooser of every decoding strategy: greedy at temperature
// 0 or top_k 1 (ties to the lowest id), draws only among the top k, follows the softmax's
// probabilities, and is reproduced by its generator's seed.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <xgrad/models/sampling.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
using namespace xgrad::models;

TEST_CASE("Sampler: greedy at temperature 0 and at top_k 1, ties to the lowest id") {
  Generator generator(1);
  const std::vector<float> logits{0.5f, 2.f, -1.f, 2.f};
  CHECK(argmax(logits.data(), logits.size()) == 1);
  Sampler greedy(0.f, 0, generator);
  CHECK(greedy(logits.data(), logits.size()) == 1);
  Sampler top1(5.f, 1, generator);
  for (int i = 0; i < 20; ++i) CHECK(top1(logits.data(), logits.size()) == 1);
}

TEST_CASE("Sampler: only the top k are drawn, in the softmax's proportions") {
  Generator generator(7);
  const std::vector<float> logits{std::log(1.f), std::log(3.f), -50.f, std::log(4.f)};
  Sampler sample(1.f, 3, generator);  // the top 3: ids 3, 1, 0 with p = 4/8, 3/8, 1/8
  std::vector<int> counts(4, 0);
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[sample(logits.data(), logits.size())];
  CHECK(counts[2] == 0);
  CHECK(counts[3] / double(draws) == doctest::Approx(0.5).epsilon(0.03));
  CHECK(counts[1] / double(draws) == doctest::Approx(0.375).epsilon(0.03));
  CHECK(counts[0] / double(draws) == doctest::Approx(0.125).epsilon(0.06));
  Sampler top2(1.f, 2, generator);
  for (int i = 0; i < 200; ++i) {
    const auto id = top2(logits.data(), logits.size());
    CHECK((id == 3 || id == 1));
  }
}

TEST_CASE("Sampler: a NaN logit ranks after every number, and is not drawn while top_k numbers exist") {
  Generator generator(5);
  const float nan = std::nanf("");
  const std::vector<float> logits{nan, 1.f, nan, 1.5f, -2.f, nan};
  Sampler top2(1.f, 2, generator);
  Sampler top3(1.f, 3, generator);
  for (int i = 0; i < 200; ++i) {
    const auto two = top2(logits.data(), logits.size());
    CHECK((two == 1 || two == 3));
    const auto three = top3(logits.data(), logits.size());
    CHECK((three == 1 || three == 3 || three == 4));
  }
}

TEST_CASE("Sampler: the same seed draws the same tokens; a bad temperature is refused") {
  const std::vector<float> logits{0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  auto draw = [&](std::uint64_t seed) {
    Generator generator(seed);
    Sampler sample(0.8f, 0, generator);
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 50; ++i) ids.push_back(sample(logits.data(), logits.size()));
    return ids;
  };
  CHECK(draw(3) == draw(3));
  CHECK(draw(3) != draw(4));
  Generator generator(1);
  CHECK_THROWS_WITH_AS(Sampler(-1.f, 0, generator), doctest::Contains("temperature must be finite and >= 0"), Error);
  CHECK_THROWS_WITH_AS(Sampler(INFINITY, 0, generator), doctest::Contains("temperature"), Error);
}
