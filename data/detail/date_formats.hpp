// The pieces of the `dates` task, exposed for its tests: proleptic Gregorian date arithmetic,
// numbers in English words, and the human ways of writing a date.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/core/generator.hpp>
#include <xgrad/data/tasks.hpp>

namespace xgrad::data::detail {

struct Date {
  int year = 1;
  int month = 1;  ///< 1..12
  int day = 1;    ///< 1..31
};

inline bool operator==(const Date& a, const Date& b) {
  return a.year == b.year && a.month == b.month && a.day == b.day;
}

/// The span the task draws from. Two-digit years read back into it: '50..'99 -> 1950..1999,
/// '00..'49 -> 2000..2049.
constexpr Date first_date{1950, 1, 1};
constexpr Date last_date{2049, 12, 31};

bool is_leap_year(int year);
int days_in_month(int year, int month);
/// Days since 0001-01-01 (day 0, a Monday) in the proleptic Gregorian calendar; years >= 1.
long day_number(const Date& date);
Date date_from_day_number(long day);
/// 0 = Monday .. 6 = Sunday.
int weekday(const Date& date);
/// "YYYY-MM-DD", the task's target.
std::string iso(const Date& date);

/// English words, hyphenated as "twenty-one": cardinals 0..99, ordinals 1..31 ("third",
/// "twenty-first"), numeric ordinals ("3rd", "11th", "22nd").
std::string cardinal_words(int n);
std::string ordinal_words(int n);
std::string numeric_ordinal(int n);
/// Years as spoken, one rule per year: 1950..1999 "nineteen fifty" .. "nineteen ninety-nine",
/// 2000..2009 "two thousand", "two thousand one" .. "two thousand nine", 2010..2049
/// "twenty ten" .. "twenty forty-nine". Throws xgrad::Error outside 1950..2049.
std::string year_words(int year);

/// One way of writing a date, as written (capitalised like English prose).
struct DateFormat {
  const char* name;
  std::string (*write)(const Date&);
};

/// Every format the task draws from, each unambiguous (see date_formats.cpp for the conventions).
const std::vector<DateFormat>& date_formats();

/// The case a source is shown in: as written, all lower case or all upper case.
enum class Casing { as_written, lower, upper };
std::string with_casing(const std::string& text, Casing casing);

/// One example of the task: a date drawn uniformly in [first_date, last_date], a format drawn
/// uniformly, a casing (as written 1/2, lower 1/4, upper 1/4); the target is the ISO date.
Example draw_date_example(Generator& generator);

/// An upper bound on the number of distinct sources draw_date_example can produce.
std::uint64_t date_source_capacity();

}  // namespace xgrad::data::detail
