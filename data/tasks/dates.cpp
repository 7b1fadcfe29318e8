// The `dates` task: a date written in one of many human ways -> ISO "YYYY-MM-DD".
//
// Every source must name exactly one date, so the numeric forms keep one convention each:
// slashes are American (month/day/year, "03/03/2021", "3/3/21") unless the four-digit year comes
// first ("2021/3/3", year/month/day); dots are European (day.month.year, "3.3.2021"); eight digits
// are year, month, day ("20210303"). Two-digit years fall in 1950..2049 ('50 -> 1950, '49 -> 2049).
// Weekdays, when written, are the date's true weekday. Spelled-out years follow year_words().
#include <xgrad/data/detail/date_formats.hpp>

#include <fmt/format.h>

namespace xgrad::data::detail {

namespace {

const char* const kMonths[12] = {"January", "February", "March",     "April",   "May",      "June",
                                 "July",    "August",   "September", "October", "November", "December"};
const char* const kWeekdays[7] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

std::string month_name(const Date& d) { return kMonths[d.month - 1]; }
std::string month_abbreviation(const Date& d) { return month_name(d).substr(0, 3); }
std::string weekday_name(const Date& d) { return kWeekdays[weekday(d)]; }
std::string weekday_abbreviation(const Date& d) { return weekday_name(d).substr(0, 3); }
int two_digit_year(const Date& d) { return d.year % 100; }

// The formats, as written for Wednesday 2021-03-03.

std::string us_numeric(const Date& d) {  // 03/03/2021
  return fmt::format("{:02d}/{:02d}/{}", d.month, d.day, d.year);
}
std::string us_short(const Date& d) {  // 3/3/21
  return fmt::format("{}/{}/{:02d}", d.month, d.day, two_digit_year(d));
}
std::string year_first(const Date& d) {  // 2021/3/3
  return fmt::format("{}/{}/{}", d.year, d.month, d.day);
}
std::string dotted(const Date& d) {  // 3.3.2021
  return fmt::format("{}.{}.{}", d.day, d.month, d.year);
}
std::string compact(const Date& d) {  // 20210303
  return fmt::format("{}{:02d}{:02d}", d.year, d.month, d.day);
}
std::string day_month_year(const Date& d) {  // 3 March 2021
  return fmt::format("{} {} {}", d.day, month_name(d), d.year);
}
std::string month_day_year(const Date& d) {  // March 3, 2021
  return fmt::format("{} {}, {}", month_name(d), d.day, d.year);
}
std::string abbreviated(const Date& d) {  // Mar 3, 2021
  return fmt::format("{} {}, {}", month_abbreviation(d), d.day, d.year);
}
std::string dashed(const Date& d) {  // 3-Mar-2021
  return fmt::format("{}-{}-{}", d.day, month_abbreviation(d), d.year);
}
std::string military(const Date& d) {  // 03MAR21
  return fmt::format("{:02d}{}{:02d}", d.day, with_casing(month_abbreviation(d), Casing::upper), two_digit_year(d));
}
std::string ordinal_of(const Date& d) {  // 3rd of March 2021
  return fmt::format("{} of {} {}", numeric_ordinal(d.day), month_name(d), d.year);
}
std::string ordinal_spoken_year(const Date& d) {  // 3rd March, twenty twenty-one
  return fmt::format("{} {}, {}", numeric_ordinal(d.day), month_name(d), year_words(d.year));
}
std::string spelled_day(const Date& d) {  // the third of March 2021
  return fmt::format("the {} of {} {}", ordinal_words(d.day), month_name(d), d.year);
}
std::string spoken(const Date& d) {  // March the third, twenty twenty-one
  return fmt::format("{} the {}, {}", month_name(d), ordinal_words(d.day), year_words(d.year));
}
std::string weekday_short(const Date& d) {  // Wed, Mar 3 '21
  return fmt::format("{}, {} {} '{:02d}", weekday_abbreviation(d), month_abbreviation(d), d.day, two_digit_year(d));
}
std::string weekday_rfc(const Date& d) {  // Wed, 03 Mar 2021
  return fmt::format("{}, {:02d} {} {}", weekday_abbreviation(d), d.day, month_abbreviation(d), d.year);
}
std::string weekday_us(const Date& d) {  // Wednesday, March 3, 2021
  return fmt::format("{}, {} {}, {}", weekday_name(d), month_name(d), d.day, d.year);
}
std::string weekday_ordinal(const Date& d) {  // Wednesday the 3rd of March, 2021
  return fmt::format("{} the {} of {}, {}", weekday_name(d), numeric_ordinal(d.day), month_name(d), d.year);
}

}  // namespace

const std::vector<DateFormat>& date_formats() {
  static const std::vector<DateFormat> formats = {
      {"us_numeric", us_numeric},
      {"us_short", us_short},
      {"year_first", year_first},
      {"dotted", dotted},
      {"compact", compact},
      {"day_month_year", day_month_year},
      {"month_day_year", month_day_year},
      {"abbreviated", abbreviated},
      {"dashed", dashed},
      {"military", military},
      {"ordinal_of", ordinal_of},
      {"ordinal_spoken_year", ordinal_spoken_year},
      {"spelled_day", spelled_day},
      {"spoken", spoken},
      {"weekday_short", weekday_short},
      {"weekday_rfc", weekday_rfc},
      {"weekday_us", weekday_us},
      {"weekday_ordinal", weekday_ordinal},
  };
  return formats;
}

// ASCII only, whatever the locale: the sources are ASCII and must not depend on the machine.
std::string with_casing(const std::string& text, Casing casing) {
  std::string out = text;
  for (char& c : out) {
    if (casing == Casing::lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (casing == Casing::upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

Example draw_date_example(Generator& generator) {
  const long first = day_number(first_date);
  const long span = day_number(last_date) - first + 1;
  const Date date = date_from_day_number(first + static_cast<long>(generator.integer(span)));
  const DateFormat& format = date_formats()[generator.integer(date_formats().size())];
  static constexpr Casing kCasings[4] = {Casing::as_written, Casing::as_written, Casing::lower, Casing::upper};
  const Casing casing = kCasings[generator.integer(4)];
  return {with_casing(format.write(date), casing), iso(date)};
}

std::uint64_t date_source_capacity() {
  const auto days = static_cast<std::uint64_t>(day_number(last_date) - day_number(first_date) + 1);
  return days * date_formats().size() * 3;  // 3 casings
}

}  // namespace xgrad::data::detail
