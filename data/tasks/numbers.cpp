// The `numbers` task: a number written in English words -> its digits,
// "three hundred forty-two thousand five hundred six" -> "342506". Word-level text, so it is
// also the corpus the SentencePiece examples use.
#include <xgrad/data/detail/date_formats.hpp>
#include <xgrad/data/detail/tasks.hpp>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>

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

// A digit count uniform in 1..6, then a number with exactly that many digits, so that short and
// long numbers are equally common.
Example draw_numbers_example(Generator& generator) {
  const int digits = 1 + static_cast<int>(generator.integer(6));
  std::uint64_t low = 1;
  for (int i = 1; i < digits; ++i) low *= 10;
  const std::uint64_t n = (digits == 1 ? 0 : low) + generator.integer(digits == 1 ? 10 : 9 * low);
  return {number_words(n), fmt::format("{}", n)};
}

std::uint64_t numbers_source_capacity() { return max_number + 1; }

}  // namespace xgrad::data::detail
