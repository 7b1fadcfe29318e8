// The `numbers` task: a number written in English words -> its digits,
// "three hundred forty-two thousand five hundred six" -> "342506". Word-level text, so it is
// also the corpus the SentencePiece examples use.
#include <xgrad/data/detail/date_formats.hpp>
#include <xgrad/data/detail/tasks.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::data::detail {

namespace {

/// 0..999 in words: "seven", "forty-two", "three hundred", "three hundred six".
std::string below_thousand_words(std::uint64_t n) {
  if (n < 100) return cardinal_words(static_cast<int>(n));
  std::string words = cardinal_words(static_cast<int>(n / 100)) + " hundred";
  if (n % 100 != 0) words += " " + cardinal_words(static_cast<int>(n % 100));
  return words;
}

}  // namespace

std::string number_words(std::uint64_t n) {
  if (n > max_number) throw Error(fmt::format("number_words: {} is above {}", n, max_number));
  if (n < 1000) return below_thousand_words(n);
  std::string words = below_thousand_words(n / 1000) + " thousand";
  if (n % 1000 != 0) words += " " + below_thousand_words(n % 1000);
  return words;
}

// The thousands (0 a quarter of the time, else uniform in 1..999) and the units (uniform in
// 0..999) drawn apart: every length of number is common enough that no small class (there are
// only 90 two-digit numbers) is used up by the test split before training sees it.
Example draw_numbers_example(Generator& generator) {
  const std::uint64_t thousands = generator.integer(4) == 0 ? 0 : 1 + generator.integer(999);
  const std::uint64_t n = thousands * 1000 + generator.integer(1000);
  return {number_words(n), fmt::format("{}", n)};
}

std::uint64_t numbers_source_capacity() { return max_number + 1; }

}  // namespace xgrad::data::detail
