// Gregorian date arithmetic and numbers in English words, for the `dates` task.
#include <xgrad/data/detail/date_formats.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::data::detail {

namespace {

constexpr int kDaysBeforeMonth[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

// Days from 0001-01-01 to January 1st of `year`: 365 a year plus the leap days passed.
long days_before_year(int year) {
  const long y = year - 1;
  return 365 * y + y / 4 - y / 100 + y / 400;
}

const char* const kOnes[20] = {"zero",    "one",     "two",       "three",    "four",
                               "five",    "six",     "seven",     "eight",    "nine",
                               "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                               "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
const char* const kTens[10] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
const char* const kOrdinalOnes[20] = {"",           "first",      "second",     "third",        "fourth",
                                      "fifth",      "sixth",      "seventh",    "eighth",       "ninth",
                                      "tenth",      "eleventh",   "twelfth",    "thirteenth",   "fourteenth",
                                      "fifteenth",  "sixteenth",  "seventeenth", "eighteenth",  "nineteenth"};

}  // namespace

bool is_leap_year(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int days_in_month(int year, int month) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) throw Error(fmt::format("days_in_month: month {} is not in 1..12", month));
  return kDays[month - 1] + (month == 2 && is_leap_year(year) ? 1 : 0);
}

long day_number(const Date& date) {
  if (date.year < 1 || date.month < 1 || date.month > 12 || date.day < 1 ||
      date.day > days_in_month(date.year, date.month)) {
    throw Error(fmt::format("day_number: {:04d}-{:02d}-{:02d} is not a date of year 1 or later", date.year,
                            date.month, date.day));
  }
  const int leap_day = date.month > 2 && is_leap_year(date.year) ? 1 : 0;
  return days_before_year(date.year) + kDaysBeforeMonth[date.month - 1] + leap_day + date.day - 1;
}

Date date_from_day_number(long day) {
  if (day < 0) throw Error(fmt::format("date_from_day_number: day {} is before 0001-01-01", day));
  // No year is longer than 366 days, so this first guess is never past the true year.
  Date date{static_cast<int>(day / 366) + 1, 1, 1};
  while (days_before_year(date.year + 1) <= day) ++date.year;
  long left = day - days_before_year(date.year);
  while (left >= days_in_month(date.year, date.month)) left -= days_in_month(date.year, date.month++);
  date.day = static_cast<int>(left) + 1;
  return date;
}

int weekday(const Date& date) { return static_cast<int>(day_number(date) % 7); }

std::string iso(const Date& date) { return fmt::format("{:04d}-{:02d}-{:02d}", date.year, date.month, date.day); }

std::string cardinal_words(int n) {
  if (n < 0 || n > 99) throw Error(fmt::format("cardinal_words: {} is not in 0..99", n));
  if (n < 20) return kOnes[n];
  if (n % 10 == 0) return kTens[n / 10];
  return fmt::format("{}-{}", kTens[n / 10], kOnes[n % 10]);
}

std::string ordinal_words(int n) {
  if (n < 1 || n > 31) throw Error(fmt::format("ordinal_words: {} is not in 1..31", n));
  if (n < 20) return kOrdinalOnes[n];
  if (n % 10 == 0) return n == 20 ? "twentieth" : "thirtieth";
  return fmt::format("{}-{}", kTens[n / 10], kOrdinalOnes[n % 10]);
}

std::string numeric_ordinal(int n) {
  if (n < 0) throw Error(fmt::format("numeric_ordinal: {} is negative", n));
  const char* suffix = "th";
  if (n % 100 < 11 || n % 100 > 13) {
    if (n % 10 == 1) suffix = "st";
    if (n % 10 == 2) suffix = "nd";
    if (n % 10 == 3) suffix = "rd";
  }
  return fmt::format("{}{}", n, suffix);
}

std::string year_words(int year) {
  if (year < 1950 || year > 2049) throw Error(fmt::format("year_words: {} is not in 1950..2049", year));
  if (year < 2000) return "nineteen " + cardinal_words(year - 1900);
  if (year == 2000) return "two thousand";
  if (year < 2010) return "two thousand " + cardinal_words(year - 2000);
  return "twenty " + cardinal_words(year - 2000);
}

}  // namespace xgrad::data::detail
