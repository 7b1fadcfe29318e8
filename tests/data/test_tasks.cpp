// The built-in tasks: names, determinism by seed, disjoint splits of the asked sizes, correct
// targets, and the errors for unknown tasks and for more examples than a task can produce.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <set>
#include <string>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/data/detail/tasks.hpp>
#include <xgrad/data/tasks.hpp>

using namespace xgrad;
using namespace xgrad::data;

namespace {

const TaskSizes kSmall{2000, 100, 200};

bool same(const std::vector<Example>& a, const std::vector<Example>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].source != b[i].source || a[i].target != b[i].target) return false;
  }
  return true;
}

bool same(const Splits& a, const Splits& b) { return same(a.train, b.train) && same(a.valid, b.valid) && same(a.test, b.test); }

std::vector<Example> all_examples(const Splits& splits) {
  std::vector<Example> all = splits.train;
  all.insert(all.end(), splits.valid.begin(), splits.valid.end());
  all.insert(all.end(), splits.test.begin(), splits.test.end());
  return all;
}

bool lower_case_letters(const std::string& text) {
  for (char c : text) {
    if (c < 'a' || c > 'z') return false;
  }
  return !text.empty();
}

// A decimal number as the add task writes it: digits only, no leading zero, 1..5 digits.
bool operand(const std::string& text) {
  if (text.empty() || text.size() > static_cast<std::size_t>(detail::max_add_digits)) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Letter-task examples: lower-case sources of the documented lengths, both ends reached.
void check_letter_sources(const std::vector<Example>& examples) {
  std::set<std::size_t> lengths;
  for (const Example& example : examples) {
    if (!lower_case_letters(example.source)) FAIL("source '", example.source, "' is not lower-case letters");
    lengths.insert(example.source.size());
  }
  CHECK(*lengths.begin() == static_cast<std::size_t>(detail::min_letters));
  CHECK(*lengths.rbegin() == static_cast<std::size_t>(detail::max_letters));
  CHECK(lengths.size() == static_cast<std::size_t>(detail::max_letters - detail::min_letters + 1));
}

// A drawer over a tiny space: "a", "b" or "c".
Example draw_one_of_three(Generator& generator) {
  const std::string letter(1, static_cast<char>('a' + generator.integer(3)));
  return {letter, letter};
}

}  // namespace

TEST_CASE("the task names") {
  CHECK(task_names() == std::vector<std::string>{"dates", "reverse", "sort", "copy", "add", "numbers"});
}

TEST_CASE("an unknown task names the valid ones") {
  CHECK_THROWS_WITH_AS(make_task("date", 0, kSmall),
                       doctest::Contains("make_task: unknown task 'date'; the tasks are dates, reverse, sort, copy, add"),
                       xgrad::Error);
}

TEST_CASE("every task: the asked sizes, no source twice, the same splits from the same seed") {
  for (const std::string& name : task_names()) {
    INFO("task ", name);
    const Splits splits = make_task(name, 11, kSmall);
    CHECK(splits.train.size() == kSmall.train);
    CHECK(splits.valid.size() == kSmall.valid);
    CHECK(splits.test.size() == kSmall.test);
    std::set<std::string> sources;
    for (const Example& example : all_examples(splits)) {
      if (!sources.insert(example.source).second) FAIL("source '", example.source, "' occurs twice");
    }
    CHECK(same(make_task(name, 11, kSmall), splits));
    const Splits other = make_task(name, 12, kSmall);
    CHECK_FALSE(same(other.train, splits.train));
    CHECK_FALSE(same(other.test, splits.test));
  }
}

TEST_CASE("a seed's test and valid splits do not depend on the train size") {
  const Splits small = make_task("dates", 5, {100, 50, 200});
  const Splits large = make_task("dates", 5, {3000, 50, 200});
  CHECK(same(small.test, large.test));
  CHECK(same(small.valid, large.valid));
  CHECK(same(small.train, std::vector<Example>(large.train.begin(), large.train.begin() + 100)));
}

TEST_CASE("the default sizes, and empty splits when asked") {
  const Splits splits = make_task("dates", 0);
  CHECK(splits.train.size() == 20000);
  CHECK(splits.valid.size() == 500);
  CHECK(splits.test.size() == 1000);
  const Splits only_train = make_task("copy", 0, {10, 0, 0});
  CHECK(only_train.train.size() == 10);
  CHECK(only_train.valid.empty());
  CHECK(only_train.test.empty());
}

TEST_CASE("dates: ISO targets of the span") {
  for (const Example& example : all_examples(make_task("dates", 1, kSmall))) {
    const std::string& t = example.target;
    const bool iso = t.size() == 10 && t[4] == '-' && t[7] == '-' && t >= "1950-01-01" && t <= "2049-12-31";
    if (!iso) FAIL("target '", t, "' of '", example.source, "' is not an ISO date of 1950..2049");
  }
}

TEST_CASE("reverse, sort and copy: targets recomputed from the sources") {
  for (const Example& example : all_examples(make_task("reverse", 2, kSmall))) {
    CHECK(example.target == std::string(example.source.rbegin(), example.source.rend()));
  }
  for (const Example& example : all_examples(make_task("sort", 2, kSmall))) {
    std::string sorted = example.source;
    std::sort(sorted.begin(), sorted.end());
    CHECK(example.target == sorted);
  }
  for (const Example& example : all_examples(make_task("copy", 2, kSmall))) CHECK(example.target == example.source);
  for (const std::string name : {"reverse", "sort", "copy"}) {
    INFO("task ", name);
    check_letter_sources(all_examples(make_task(name, 2, kSmall)));
  }
}

TEST_CASE("add: the decimal sum of two operands of 1..5 digits") {
  std::set<std::size_t> operand_lengths;
  for (const Example& example : all_examples(make_task("add", 4, kSmall))) {
    const std::size_t plus = example.source.find('+');
    REQUIRE(plus != std::string::npos);
    const std::string a = example.source.substr(0, plus);
    const std::string b = example.source.substr(plus + 1);
    if (!operand(a) || !operand(b)) FAIL("source '", example.source, "' is not two operands");
    CHECK(example.target == std::to_string(std::stoull(a) + std::stoull(b)));
    operand_lengths.insert(a.size());
    operand_lengths.insert(b.size());
  }
  CHECK(operand_lengths == std::set<std::size_t>{1, 2, 3, 4, 5});
}

TEST_CASE("asking more examples than a task can produce") {
  CHECK_THROWS_WITH_AS(make_task("add", 0, {20000000000ull, 0, 0}),
                       doctest::Contains("make_task: task 'add' has at most 10000000000 distinct sources, fewer than "
                                         "the 20000000000 examples asked (train 20000000000 + valid 0 + test 0)"),
                       xgrad::Error);
  const std::size_t most = std::numeric_limits<std::size_t>::max();
  CHECK_THROWS_WITH_AS(make_task("dates", 0, {most, 1, 0}), doctest::Contains("task 'dates': the split sizes"),
                       xgrad::Error);
  CHECK_THROWS_WITH_AS(make_task("dates", 0, {most - 1, 1, 1}), doctest::Contains("overflow"), xgrad::Error);
  CHECK_THROWS_WITH_AS(make_task("dates", 0, {2000000, 0, 0}), doctest::Contains("has at most 1972350 distinct"),
                       xgrad::Error);
}

TEST_CASE("a space smaller than its bound stops after a budget of draws") {
  const Splits exact = detail::draw_disjoint_splits("abc", draw_one_of_three, 3, 0, {1, 1, 1});
  std::set<std::string> sources;
  for (const Example& example : all_examples(exact)) sources.insert(example.source);
  CHECK(sources == std::set<std::string>{"a", "b", "c"});
  CHECK_THROWS_WITH_AS(detail::draw_disjoint_splits("abc", draw_one_of_three, 10, 0, {2, 1, 1}),
                       doctest::Contains("make_task: task 'abc' found only 3 distinct sources in 1040 draws, fewer "
                                         "than the 4 examples asked (train 2 + valid 1 + test 1)"),
                       xgrad::Error);
  CHECK_THROWS_WITH_AS(detail::draw_disjoint_splits("abc", draw_one_of_three, 3, 0, {2, 1, 1}),
                       doctest::Contains("task 'abc' has at most 3 distinct sources"), xgrad::Error);
}

namespace {
/// Reads English number words back, independently of the generator: units and tens add up,
/// "hundred" multiplies the group so far, "thousand" closes the thousands.
std::optional<std::uint64_t> parse_number_words(const std::string& text) {
  static const std::map<std::string, std::uint64_t> values = {
      {"zero", 0},     {"one", 1},        {"two", 2},       {"three", 3},     {"four", 4},      {"five", 5},
      {"six", 6},      {"seven", 7},      {"eight", 8},     {"nine", 9},      {"ten", 10},      {"eleven", 11},
      {"twelve", 12},  {"thirteen", 13},  {"fourteen", 14}, {"fifteen", 15},  {"sixteen", 16},  {"seventeen", 17},
      {"eighteen", 18}, {"nineteen", 19}, {"twenty", 20},   {"thirty", 30},   {"forty", 40},    {"fifty", 50},
      {"sixty", 60},   {"seventy", 70},   {"eighty", 80},   {"ninety", 90}};
  std::uint64_t total = 0, group = 0;
  std::string word;
  std::istringstream in(text);
  while (in >> word) {
    if (word == "hundred") group *= 100;
    else if (word == "thousand") total += group * 1000, group = 0;
    else {
      std::size_t dash = word.find('-');
      const std::string first = word.substr(0, dash);
      if (!values.count(first)) return std::nullopt;
      group += values.at(first);
      if (dash != std::string::npos) {
        const std::string second = word.substr(dash + 1);
        if (!values.count(second)) return std::nullopt;
        group += values.at(second);
      }
    }
  }
  return total + group;
}
}  // namespace

TEST_CASE("numbers: English words below a million -> digits") {
  CHECK(detail::number_words(0) == "zero");
  CHECK(detail::number_words(15) == "fifteen");
  CHECK(detail::number_words(342506) == "three hundred forty-two thousand five hundred six");
  CHECK(detail::number_words(1000) == "one thousand");
  CHECK(detail::number_words(100010) == "one hundred thousand ten");
  CHECK(detail::number_words(999999) == "nine hundred ninety-nine thousand nine hundred ninety-nine");
  CHECK_THROWS_WITH_AS(detail::number_words(1000000), doctest::Contains("1000000 is above 999999"), Error);
  std::set<std::size_t> lengths;
  for (const Example& example : all_examples(make_task("numbers", 6, kSmall))) {
    const std::optional<std::uint64_t> value = parse_number_words(example.source);
    if (!value) FAIL("source '", example.source, "' has a word that is not a number word");
    CHECK(example.target == std::to_string(*value));
    lengths.insert(example.target.size());
  }
  CHECK(lengths == std::set<std::size_t>{1, 2, 3, 4, 5, 6});
  // Small classes are not used up by the test split: training has numbers below 100 too.
  std::size_t train_below_100 = 0;
  for (const Example& example : make_task("numbers", 6).train) train_below_100 += example.target.size() <= 2;
  CHECK(train_below_100 >= 20);
}
