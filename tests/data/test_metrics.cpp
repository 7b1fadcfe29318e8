// Metrics against tests/fixtures/metrics.json (written by tests/fixtures/make_metrics_fixtures.py
// from NLTK's BLEU counts and a chrF written from its definition), plus cases worked by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/data/metrics.hpp>

using namespace xgrad;
using namespace xgrad::data;
using json = nlohmann::json;

namespace {

// Scores are on the 0..100 scale.
constexpr double kTolerance = 0.01;

const json& fixture() {
  static const json data = [] {
    const std::string path = std::string(XGRAD_FIXTURES_DIR) + "/metrics.json";
    std::ifstream in(path);
    if (!in) throw Error("cannot open fixture " + path);
    return json::parse(in);
  }();
  return data;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("tokenize_13a splits as sacreBLEU's 13a tokenizer does") {
  const json& cases = fixture().at("tokenize");
  REQUIRE(cases.size() >= 10);
  for (const json& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    CAPTURE(text);
    CHECK(tokenize_13a(text) == c.at("tokens").get<Lines>());
  }
}

TEST_CASE("tokenize_13a: numbers keep their separators, symbols and sentence periods split") {
  CHECK(tokenize_13a("It costs $1,000.50.") == Lines{"It", "costs", "$", "1,000.50", "."});
  CHECK(tokenize_13a("pages 10-20, \"ok\"") == Lines{"pages", "10", "-", "20", ",", "\"", "ok", "\""});
  CHECK(tokenize_13a("don't a-b") == Lines{"don't", "a-b"});
  CHECK(tokenize_13a("  \t ").empty());
}

TEST_CASE("corpus_bleu and corpus_chrf match the fixture corpora") {
  const json& corpora = fixture().at("corpora");
  REQUIRE(corpora.size() >= 9);
  for (const json& c : corpora) {
    CAPTURE(c.at("name").get<std::string>());
    const Lines hypotheses = c.at("hypotheses").get<Lines>();
    const Lines references = c.at("references").get<Lines>();
    CHECK(std::abs(corpus_bleu(hypotheses, references) - c.at("bleu").get<double>()) <= kTolerance);
    CHECK(std::abs(corpus_chrf(hypotheses, references) - c.at("chrf").get<double>()) <= kTolerance);
  }
}

TEST_CASE("corpus_bleu: an identical corpus scores 100, a disjoint one 0") {
  const Lines text = {"the cat sat on the mat .", "a b c d e f"};
  CHECK(corpus_bleu(text, text) == doctest::Approx(100.0));
  CHECK(corpus_bleu({"one two three four"}, {"five six seven eight"}) == 0.0);
  CHECK(corpus_bleu({}, {}) == 0.0);
  CHECK(corpus_bleu({""}, {"some words"}) == 0.0);
}

TEST_CASE("corpus_bleu: the brevity penalty exp(1 - r/c) applies to short hypotheses only") {
  // All n-grams of the hypothesis match: precisions 1, so BLEU is the brevity penalty.
  CHECK(corpus_bleu({"a b c d"}, {"a b c d e f"}) == doctest::Approx(100.0 * std::exp(1.0 - 6.0 / 4.0)));
  // A longer hypothesis has no penalty: precisions 6/8, 5/7, 4/6, 3/5.
  const double expected = 100.0 * std::pow(6.0 / 8 * 5.0 / 7 * 4.0 / 6 * 3.0 / 5, 0.25);
  CHECK(corpus_bleu({"a b c d e f x y"}, {"a b c d e f"}) == doctest::Approx(expected));
}

TEST_CASE("corpus_bleu: counts clipped by the reference and summed over the corpus") {
  // Unigrams: "the" x4 clipped to 2 -> 2/4 ... the second line matches whole.
  const Lines hypotheses = {"the the the the", "w x y z"};
  const Lines references = {"the cat the dog", "w x y z"};
  // 1-grams 6/8, 2-grams 3/6, 3-grams 2/4, 4-grams 1/2; lengths equal.
  const double expected = 100.0 * std::pow(6.0 / 8 * 3.0 / 6 * 2.0 / 4 * 1.0 / 2, 0.25);
  CHECK(corpus_bleu(hypotheses, references) == doctest::Approx(expected));
}

TEST_CASE("corpus_chrf: identical text scores 100, disjoint characters 0, whitespace ignored") {
  CHECK(corpus_chrf({"Größe 東京"}, {"Größe 東京"}) == doctest::Approx(100.0));
  CHECK(corpus_chrf({"abc"}, {"xyz"}) == 0.0);
  CHECK(corpus_chrf({"a b\tc"}, {"abc"}) == doctest::Approx(100.0));
  CHECK(corpus_chrf({""}, {""}) == 0.0);
  CHECK(corpus_chrf({}, {}) == 0.0);
}

TEST_CASE("corpus_chrf: precision and recall averaged over orders, then F-beta") {
  // "ab" vs "abc": order 1 P 2/2 R 2/3, order 2 P 1/1 R 1/2, order 3 has no hypothesis n-gram.
  const double p = 1.0, r = (2.0 / 3 + 1.0 / 2) / 2;
  CHECK(corpus_chrf({"ab"}, {"abc"}) == doctest::Approx(100.0 * 5 * p * r / (4 * p + r)));
  // beta = 1 weighs them equally; char_order 1 counts single characters only ("ab" vs "ba": all match).
  CHECK(corpus_chrf({"ab"}, {"abc"}, 6, 1.0) == doctest::Approx(100.0 * 2 * p * r / (p + r)));
  CHECK(corpus_chrf({"ab"}, {"ba"}, 1) == doctest::Approx(100.0));
}

TEST_CASE("corpus_chrf counts code points, and invalid UTF-8 bytes one each") {
  // "é" is one character: "é" against "e" shares nothing.
  CHECK(corpus_chrf({"é"}, {"e"}) == 0.0);
  CHECK(corpus_chrf({"\xff\xfe"}, {"\xff\xfe"}) == doctest::Approx(100.0));
  CHECK(corpus_chrf({"\xff"}, {"\xfe"}) == 0.0);
}

TEST_CASE("exact_match is the fraction of identical lines") {
  CHECK(exact_match({"a", "b c", "d"}, {"a", "b  c", "d"}) == doctest::Approx(2.0 / 3.0));
  CHECK(exact_match({}, {}) == 0.0);
}

TEST_CASE("every metric rejects lists of different lengths") {
  const Lines two = {"a", "b"}, three = {"a", "b", "c"};
  CHECK_THROWS_WITH_AS(corpus_bleu(two, three), doctest::Contains("corpus_bleu: 2 hypotheses but 3 references"),
                       Error);
  CHECK_THROWS_WITH_AS(corpus_chrf(two, three), doctest::Contains("corpus_chrf: 2 hypotheses but 3 references"),
                       Error);
  CHECK_THROWS_WITH_AS(exact_match(two, three), doctest::Contains("exact_match: 2 hypotheses but 3 references"),
                       Error);
  CHECK_THROWS_WITH_AS(corpus_bleu(three, two), doctest::Contains("3 hypotheses but 2 references"), Error);
}

TEST_CASE("corpus_chrf rejects a zero order and a negative or non-finite beta") {
  CHECK_THROWS_WITH_AS(corpus_chrf({"a"}, {"a"}, 0), doctest::Contains("corpus_chrf: char_order is 0"), Error);
  CHECK_THROWS_WITH_AS(corpus_chrf({"a"}, {"a"}, 6, -1.0), doctest::Contains("corpus_chrf: beta is -1"), Error);
  CHECK_THROWS_WITH_AS(corpus_chrf({"a"}, {"a"}, 6, std::nan("")), doctest::Contains("corpus_chrf: beta is nan"),
                       Error);
}
