// The `dates` task's pieces: calendar arithmetic against known dates, number words, every format
// on hand-checked dates, and that no source names two dates.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/data/detail/date_formats.hpp>

using namespace xgrad;
using namespace xgrad::data;
using namespace xgrad::data::detail;

namespace {

enum Weekday { monday, tuesday, wednesday, thursday, friday, saturday, sunday };

Date parse_iso(const std::string& text) {
  REQUIRE(text.size() == 10);
  REQUIRE(text[4] == '-');
  REQUIRE(text[7] == '-');
  return {std::stoi(text.substr(0, 4)), std::stoi(text.substr(5, 2)), std::stoi(text.substr(8, 2))};
}

std::string write(const std::string& format_name, const Date& date) {
  for (const DateFormat& format : date_formats()) {
    if (format_name == format.name) return format.write(date);
  }
  FAIL("no format named ", format_name);
  return "";
}

// Each format's text for one date, written by hand.
void check_formats(const Date& date, const std::map<std::string, std::string>& expected) {
  INFO("date ", iso(date));
  CHECK(expected.size() == date_formats().size());
  for (const auto& format : expected) {
    const std::string& name = format.first;  // (a structured binding cannot be captured in C++17)
    INFO("format ", name);
    CHECK(write(name, date) == format.second);
  }
}

}  // namespace

TEST_CASE("leap years and month lengths follow the Gregorian rules") {
  CHECK(is_leap_year(2024));
  CHECK(is_leap_year(2000));
  CHECK_FALSE(is_leap_year(1900));
  CHECK_FALSE(is_leap_year(2023));
  CHECK(days_in_month(2000, 2) == 29);
  CHECK(days_in_month(1900, 2) == 28);
  CHECK(days_in_month(2021, 4) == 30);
  CHECK(days_in_month(2021, 12) == 31);
  CHECK_THROWS_WITH_AS(days_in_month(2021, 13), doctest::Contains("month 13 is not in 1..12"), xgrad::Error);
}

TEST_CASE("day numbers and weekdays agree with known dates") {
  CHECK(day_number({1, 1, 1}) == 0);
  CHECK(day_number({2021, 3, 3}) == 737851);
  CHECK(day_number({2000, 2, 29}) == 730178);
  CHECK(day_number({1900, 3, 1}) == 693654);
  CHECK(weekday({1, 1, 1}) == monday);
  CHECK(weekday({2021, 3, 3}) == wednesday);
  CHECK(weekday({2000, 2, 29}) == tuesday);
  CHECK(weekday({1969, 7, 20}) == sunday);
  CHECK(weekday({1950, 1, 1}) == sunday);
  CHECK(weekday({2049, 12, 31}) == friday);
  CHECK(iso({2021, 3, 3}) == "2021-03-03");
  CHECK_THROWS_WITH_AS(day_number({2021, 2, 29}), doctest::Contains("2021-02-29 is not a date"), xgrad::Error);
  CHECK_THROWS_WITH_AS(date_from_day_number(-1), doctest::Contains("day -1 is before 0001-01-01"), xgrad::Error);
}

TEST_CASE("every day of the span follows the previous one") {
  const long first = day_number(first_date);
  const long last = day_number(last_date);
  CHECK(last - first + 1 == 36525);
  Date previous = date_from_day_number(first);
  CHECK(previous == first_date);
  for (long day = first + 1; day <= last; ++day) {
    const Date date = date_from_day_number(day);
    const bool next_day = date.year == previous.year && date.month == previous.month && date.day == previous.day + 1;
    const bool next_month = date.year == previous.year && date.month == previous.month + 1 && date.day == 1 &&
                            previous.day == days_in_month(previous.year, previous.month);
    const bool next_year = date.year == previous.year + 1 && date.month == 1 && date.day == 1 && previous.month == 12 &&
                           previous.day == 31;
    if (!(next_day || next_month || next_year)) FAIL(iso(date), " does not follow ", iso(previous));
    if (day_number(date) != day) FAIL(iso(date), " has day number ", day_number(date), ", not ", day);
    if (weekday(date) != (weekday(previous) + 1) % 7) FAIL(iso(date), " has the wrong weekday");
    previous = date;
  }
  CHECK(previous == last_date);
}

TEST_CASE("numbers in words") {
  CHECK(cardinal_words(0) == "zero");
  CHECK(cardinal_words(13) == "thirteen");
  CHECK(cardinal_words(40) == "forty");
  CHECK(cardinal_words(57) == "fifty-seven");
  CHECK(cardinal_words(99) == "ninety-nine");
  const std::vector<std::string> ordinals = {
      "first",        "second",       "third",       "fourth",       "fifth",         "sixth",
      "seventh",      "eighth",       "ninth",       "tenth",        "eleventh",      "twelfth",
      "thirteenth",   "fourteenth",   "fifteenth",   "sixteenth",    "seventeenth",   "eighteenth",
      "nineteenth",   "twentieth",    "twenty-first", "twenty-second", "twenty-third", "twenty-fourth",
      "twenty-fifth", "twenty-sixth", "twenty-seventh", "twenty-eighth", "twenty-ninth", "thirtieth",
      "thirty-first"};
  for (int n = 1; n <= 31; ++n) CHECK(ordinal_words(n) == ordinals[n - 1]);
  const std::map<int, std::string> numeric = {{1, "1st"},   {2, "2nd"},   {3, "3rd"},    {4, "4th"},
                                              {11, "11th"}, {12, "12th"}, {13, "13th"},  {21, "21st"},
                                              {22, "22nd"}, {23, "23rd"}, {30, "30th"},  {31, "31st"},
                                              {101, "101st"}, {111, "111th"}, {112, "112th"}};
  for (const auto& [n, text] : numeric) CHECK(numeric_ordinal(n) == text);
  CHECK_THROWS_WITH_AS(cardinal_words(100), doctest::Contains("100 is not in 0..99"), xgrad::Error);
  CHECK_THROWS_WITH_AS(ordinal_words(32), doctest::Contains("32 is not in 1..31"), xgrad::Error);
  CHECK_THROWS_WITH_AS(numeric_ordinal(-1), doctest::Contains("-1 is negative"), xgrad::Error);
}

TEST_CASE("years in words: one rule per year of the span") {
  CHECK(year_words(1950) == "nineteen fifty");
  CHECK(year_words(1999) == "nineteen ninety-nine");
  CHECK(year_words(2000) == "two thousand");
  CHECK(year_words(2005) == "two thousand five");
  CHECK(year_words(2010) == "twenty ten");
  CHECK(year_words(2013) == "twenty thirteen");
  CHECK(year_words(2021) == "twenty twenty-one");
  CHECK(year_words(2049) == "twenty forty-nine");
  CHECK_THROWS_WITH_AS(year_words(1949), doctest::Contains("1949 is not in 1950..2049"), xgrad::Error);
  CHECK_THROWS_WITH_AS(year_words(2050), doctest::Contains("2050 is not in 1950..2049"), xgrad::Error);
  std::set<std::string> all;
  for (int year = 1950; year <= 2049; ++year) all.insert(year_words(year));
  CHECK(all.size() == 100);
}

TEST_CASE("every format on a Wednesday with a single-digit day and month") {
  check_formats({2021, 3, 3}, {{"us_numeric", "03/03/2021"},
                               {"us_short", "3/3/21"},
                               {"year_first", "2021/3/3"},
                               {"dotted", "3.3.2021"},
                               {"compact", "20210303"},
                               {"day_month_year", "3 March 2021"},
                               {"month_day_year", "March 3, 2021"},
                               {"abbreviated", "Mar 3, 2021"},
                               {"dashed", "3-Mar-2021"},
                               {"military", "03MAR21"},
                               {"ordinal_of", "3rd of March 2021"},
                               {"ordinal_spoken_year", "3rd March, twenty twenty-one"},
                               {"spelled_day", "the third of March 2021"},
                               {"spoken", "March the third, twenty twenty-one"},
                               {"weekday_short", "Wed, Mar 3 '21"},
                               {"weekday_rfc", "Wed, 03 Mar 2021"},
                               {"weekday_us", "Wednesday, March 3, 2021"},
                               {"weekday_ordinal", "Wednesday the 3rd of March, 2021"}});
}

TEST_CASE("every format on a leap day, a Tuesday in the year two thousand") {
  check_formats({2000, 2, 29}, {{"us_numeric", "02/29/2000"},
                                {"us_short", "2/29/00"},
                                {"year_first", "2000/2/29"},
                                {"dotted", "29.2.2000"},
                                {"compact", "20000229"},
                                {"day_month_year", "29 February 2000"},
                                {"month_day_year", "February 29, 2000"},
                                {"abbreviated", "Feb 29, 2000"},
                                {"dashed", "29-Feb-2000"},
                                {"military", "29FEB00"},
                                {"ordinal_of", "29th of February 2000"},
                                {"ordinal_spoken_year", "29th February, two thousand"},
                                {"spelled_day", "the twenty-ninth of February 2000"},
                                {"spoken", "February the twenty-ninth, two thousand"},
                                {"weekday_short", "Tue, Feb 29 '00"},
                                {"weekday_rfc", "Tue, 29 Feb 2000"},
                                {"weekday_us", "Tuesday, February 29, 2000"},
                                {"weekday_ordinal", "Tuesday the 29th of February, 2000"}});
}

TEST_CASE("every format on the first day of the span, a Sunday") {
  check_formats({1950, 1, 1}, {{"us_numeric", "01/01/1950"},
                               {"us_short", "1/1/50"},
                               {"year_first", "1950/1/1"},
                               {"dotted", "1.1.1950"},
                               {"compact", "19500101"},
                               {"day_month_year", "1 January 1950"},
                               {"month_day_year", "January 1, 1950"},
                               {"abbreviated", "Jan 1, 1950"},
                               {"dashed", "1-Jan-1950"},
                               {"military", "01JAN50"},
                               {"ordinal_of", "1st of January 1950"},
                               {"ordinal_spoken_year", "1st January, nineteen fifty"},
                               {"spelled_day", "the first of January 1950"},
                               {"spoken", "January the first, nineteen fifty"},
                               {"weekday_short", "Sun, Jan 1 '50"},
                               {"weekday_rfc", "Sun, 01 Jan 1950"},
                               {"weekday_us", "Sunday, January 1, 1950"},
                               {"weekday_ordinal", "Sunday the 1st of January, 1950"}});
}

TEST_CASE("every format on a Wednesday in the last year of the span") {
  check_formats({2049, 12, 22}, {{"us_numeric", "12/22/2049"},
                                 {"us_short", "12/22/49"},
                                 {"year_first", "2049/12/22"},
                                 {"dotted", "22.12.2049"},
                                 {"compact", "20491222"},
                                 {"day_month_year", "22 December 2049"},
                                 {"month_day_year", "December 22, 2049"},
                                 {"abbreviated", "Dec 22, 2049"},
                                 {"dashed", "22-Dec-2049"},
                                 {"military", "22DEC49"},
                                 {"ordinal_of", "22nd of December 2049"},
                                 {"ordinal_spoken_year", "22nd December, twenty forty-nine"},
                                 {"spelled_day", "the twenty-second of December 2049"},
                                 {"spoken", "December the twenty-second, twenty forty-nine"},
                                 {"weekday_short", "Wed, Dec 22 '49"},
                                 {"weekday_rfc", "Wed, 22 Dec 2049"},
                                 {"weekday_us", "Wednesday, December 22, 2049"},
                                 {"weekday_ordinal", "Wednesday the 22nd of December, 2049"}});
}

TEST_CASE("every format on a Friday the eleventh in the two-thousands") {
  check_formats({2005, 11, 11}, {{"us_numeric", "11/11/2005"},
                                 {"us_short", "11/11/05"},
                                 {"year_first", "2005/11/11"},
                                 {"dotted", "11.11.2005"},
                                 {"compact", "20051111"},
                                 {"day_month_year", "11 November 2005"},
                                 {"month_day_year", "November 11, 2005"},
                                 {"abbreviated", "Nov 11, 2005"},
                                 {"dashed", "11-Nov-2005"},
                                 {"military", "11NOV05"},
                                 {"ordinal_of", "11th of November 2005"},
                                 {"ordinal_spoken_year", "11th November, two thousand five"},
                                 {"spelled_day", "the eleventh of November 2005"},
                                 {"spoken", "November the eleventh, two thousand five"},
                                 {"weekday_short", "Fri, Nov 11 '05"},
                                 {"weekday_rfc", "Fri, 11 Nov 2005"},
                                 {"weekday_us", "Friday, November 11, 2005"},
                                 {"weekday_ordinal", "Friday the 11th of November, 2005"}});
}

TEST_CASE("casings change ASCII letters only") {
  CHECK(with_casing("Wed, Mar 3 '21", Casing::as_written) == "Wed, Mar 3 '21");
  CHECK(with_casing("Wed, Mar 3 '21", Casing::lower) == "wed, mar 3 '21");
  CHECK(with_casing("Wed, Mar 3 '21", Casing::upper) == "WED, MAR 3 '21");
}

TEST_CASE("no source names two dates: every date of the span in every format and casing") {
  std::unordered_map<std::string, long> day_of_source;
  day_of_source.reserve(2000000);
  std::size_t longest = 0;
  for (long day = day_number(first_date); day <= day_number(last_date); ++day) {
    const Date date = date_from_day_number(day);
    for (const DateFormat& format : date_formats()) {
      const std::string written = format.write(date);
      longest = std::max(longest, written.size());
      for (Casing casing : {Casing::as_written, Casing::lower, Casing::upper}) {
        const auto [it, inserted] = day_of_source.emplace(with_casing(written, casing), day);
        if (!inserted && it->second != day) {
          FAIL("'", it->first, "' is written for both ", iso(date_from_day_number(it->second)), " and ", iso(date));
        }
      }
    }
  }
  CHECK(day_of_source.size() <= date_source_capacity());
  CHECK(longest <= 52);  // "September the twenty-seventh, nineteen seventy-seven"
}

TEST_CASE("drawn examples: a format and casing of the target's date, spread uniformly") {
  Generator generator(3);
  const int draws = 18000;
  // A source may be written the same by two formats ("May 3, 2021"): each then counts half.
  std::map<std::string, double> per_format;
  std::map<std::string, double> per_casing;
  std::string earliest = "9999", latest = "0000";
  for (int i = 0; i < draws; ++i) {
    const Example example = draw_date_example(generator);
    const Date date = parse_iso(example.target);
    CHECK(iso(date) == example.target);
    earliest = std::min(earliest, example.target);
    latest = std::max(latest, example.target);
    std::vector<std::pair<std::string, std::string>> matches;  // (format, casing)
    for (const DateFormat& format : date_formats()) {
      const std::string written = format.write(date);
      // Only formats in mixed case tell the three casings apart.
      const bool mixed_case = written != with_casing(written, Casing::lower) &&
                              written != with_casing(written, Casing::upper);
      for (auto [casing, casing_name] : {std::pair{Casing::as_written, "as written"}, std::pair{Casing::lower, "lower"},
                                         std::pair{Casing::upper, "upper"}}) {
        if (with_casing(written, casing) != example.source) continue;
        matches.emplace_back(format.name, mixed_case ? casing_name : "");
        break;
      }
    }
    if (matches.empty()) FAIL("'", example.source, "' is no format of ", example.target);
    for (const auto& [format, casing] : matches) {
      per_format[format] += 1.0 / matches.size();
      if (!casing.empty()) per_casing[casing] += 1.0 / matches.size();
    }
  }
  CHECK(earliest >= "1950-01-01");
  CHECK(latest <= "2049-12-31");
  CHECK(earliest < "1951");
  CHECK(latest > "2049");
  REQUIRE(per_format.size() == date_formats().size());
  for (const auto& [format, count] : per_format) {
    const std::string& name = format;  // (a structured binding cannot be captured in C++17)
    INFO("format ", name);
    CHECK(count > 850);  // 1000 expected; the standard deviation is about 31
    CHECK(count < 1150);
  }
  // As written 1/2, lower 1/4, upper 1/4.
  const double mixed = per_casing["as written"] + per_casing["lower"] + per_casing["upper"];
  CHECK(mixed > 11000);  // 12 of the 18 formats are in mixed case
  CHECK(per_casing["as written"] / mixed == doctest::Approx(0.5).epsilon(0.06));
  CHECK(per_casing["lower"] / mixed == doctest::Approx(0.25).epsilon(0.1));
  CHECK(per_casing["upper"] / mixed == doctest::Approx(0.25).epsilon(0.1));
}
