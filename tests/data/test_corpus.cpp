// Corpus files: pairs read from "source<TAB>target" lines, each kind of malformed line skipped,
// counted and reported once, the errors for unreadable or unusable files, and strict UTF-8.
#include <doctest/doctest.h>

#include <sstream>

#include <sys/stat.h>
#include <string>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/data/corpus.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
using namespace xgrad::data;

namespace {

std::vector<std::pair<std::string, std::string>> pairs(const std::vector<Example>& examples) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Example& example : examples) out.emplace_back(example.source, example.target);
  return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("well-formed lines give pairs and no warning") {
  const TempDir dir("corpus");
  const std::string file = dir.write("clean.tsv", "hello\tbonjour\ncafé\tcafé ☕\n");
  std::ostringstream warnings;
  CorpusReport report;
  const auto examples = read_tsv(file, &warnings, &report);
  CHECK(pairs(examples) == Pairs{{"hello", "bonjour"}, {"café", "café ☕"}});
  CHECK(warnings.str().empty());
  CHECK(report.lines == 2);
  CHECK(report.kept == 2);
  CHECK(report.skipped == 0);
  CHECK(report.first_skipped.empty());
}

TEST_CASE("a final line without newline counts; a second tab belongs to the target") {
  const TempDir dir("corpus");
  const std::string file = dir.write("last_line.tsv", "a\tb\tc\nd\te");
  CorpusReport report;
  const auto examples = read_tsv(file, nullptr, &report);
  CHECK(pairs(examples) == Pairs{{"a", "b\tc"}, {"d", "e"}});
  CHECK(report.lines == 2);
}

TEST_CASE("CRLF line ends and a byte-order mark are dropped") {
  const TempDir dir("corpus");
  const std::string file = dir.write("crlf.tsv", "\xEF\xBB\xBFone\tun\r\ntwo\tdeux\r\nthree\ttrois\r");
  const auto examples = read_tsv(file, nullptr);
  CHECK(pairs(examples) == Pairs{{"one", "un"}, {"two", "deux"}, {"three", "trois"}});
}

TEST_CASE("each kind of malformed line is skipped, counted and named in one warning") {
  const TempDir dir("corpus");
  const std::string file = dir.write("malformed.tsv",
                                     "good\tbon\n"
                                     "no tab here\n"
                                     "\tempty source\n"
                                     "empty target\t\r\n"
                                     "bad\t\xC3\x28 byte\n"
                                     "\n"
                                     "also good\taussi bon\n");
  std::ostringstream warnings;
  CorpusReport report;
  const auto examples = read_tsv(file, &warnings, &report);
  CHECK(pairs(examples) == Pairs{{"good", "bon"}, {"also good", "aussi bon"}});
  CHECK(report.lines == 7);
  CHECK(report.kept == 2);
  CHECK(report.skipped == 5);
  CHECK(report.first_skipped == std::vector<std::size_t>{2, 3, 4, 5, 6});
  CHECK(warnings.str() == "warning: read_tsv: skipped 5 malformed of 7 lines in '" + file +
                              "' (line 2: no tab; line 3: empty source; line 4: empty target; line 5: invalid "
                              "UTF-8; line 6: empty line)\n");
}

TEST_CASE("many malformed lines: all counted, the first five shown") {
  const TempDir dir("corpus");
  std::string contents = "x\ty\n";
  for (int i = 0; i < 8; ++i) contents += "junk\n";
  const std::string file = dir.write("many.tsv", contents);
  std::ostringstream warnings;
  CorpusReport report;
  read_tsv(file, &warnings, &report);
  CHECK(report.skipped == 8);
  CHECK(report.first_skipped == std::vector<std::size_t>{2, 3, 4, 5, 6});
  CHECK(warnings.str() == "warning: read_tsv: skipped 8 malformed of 9 lines in '" + file +
                              "' (the first 5: line 2: no tab; line 3: no tab; line 4: no tab; line 5: no tab; "
                              "line 6: no tab)\n");
}

TEST_CASE("files that cannot be read or have no usable line") {
  const TempDir dir("corpus");
  const std::string missing = dir.file("missing.tsv");
  const std::string cannot_open = "read_tsv: cannot open '" + missing + "': No such file or directory";
  CHECK_THROWS_WITH_AS(read_tsv(missing, nullptr), doctest::Contains(cannot_open.c_str()), xgrad::Error);
  const std::string folder = dir.path().string();
  const std::string is_folder = "read_tsv: '" + folder + "' is a folder, expected a regular file";
  CHECK_THROWS_WITH_AS(read_tsv(folder, nullptr), doctest::Contains(is_folder.c_str()), xgrad::Error);

  const std::string empty = dir.write("empty.tsv", "");
  const std::string no_line = "read_tsv: '" + empty + "' has no usable 'source<TAB>target' line (0 lines)";
  CHECK_THROWS_WITH_AS(read_tsv(empty, nullptr), doctest::Contains(no_line.c_str()), xgrad::Error);

  const std::string useless = dir.write("useless.tsv", "no tab\n\tonly target\n");
  std::ostringstream warnings;
  CHECK_THROWS_WITH_AS(read_tsv(useless, &warnings),
                       doctest::Contains("has no usable 'source<TAB>target' line (2 lines, line 1: no tab; line 2: "
                                         "empty source)"),
                       xgrad::Error);
  CHECK(warnings.str().empty());
}

TEST_CASE("hostile corpus files: a FIFO, a binary file, tabs only, a NUL byte, a 10 MB line") {
  const TempDir dir("corpus");
  // A FIFO with no writer: refused at once, never waited on.
  const std::string fifo = dir.file("pipe.tsv");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(read_tsv(fifo, nullptr), doctest::Contains("is a FIFO (named pipe), expected a regular file"),
                       xgrad::Error);
  CHECK_THROWS_WITH_AS(read_tsv("/dev/null", nullptr), doctest::Contains("is a character device"), xgrad::Error);

  std::string binary = "\x7f" "ELF\x02\x01\x01";
  binary += std::string(8, '\0') + "\tsome\ttext\n";
  CHECK_THROWS_WITH_AS(read_tsv(dir.write("program.tsv", binary), nullptr),
                       doctest::Contains("looks like a binary file (a NUL byte at offset 7)"), xgrad::Error);

  CHECK_THROWS_WITH_AS(read_tsv(dir.write("tabs.tsv", "\t\t\t\n\t\n\t\t"), nullptr),
                       doctest::Contains("no usable 'source<TAB>target' line (3 lines, line 1: empty source"),
                       xgrad::Error);

  // Past the first 64 KiB a NUL byte only costs its line; a 10 MB line is skipped unkept.
  std::string text;
  for (int i = 0; i < 4000; ++i) text += "source " + std::to_string(i) + "\ttarget text\n";
  text += std::string("nul\t\0byte\n", 10);
  text += std::string(10'000'000, 'x') + "\tlong\n";
  text += "last\tline";
  std::ostringstream warnings;
  CorpusReport report;
  const auto examples = read_tsv(dir.write("mixed.tsv", text), &warnings, &report);
  CHECK(examples.size() == 4001);
  CHECK(examples.back().source == "last");
  CHECK(report.lines == 4003);
  CHECK(report.skipped == 2);
  CHECK(warnings.str().find("line 4001: a NUL byte; line 4002: longer than 1 MiB") != std::string::npos);
}

TEST_CASE("valid_utf8 accepts well-formed text up to U+10FFFF") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ASCII\t~"));
  CHECK(valid_utf8(std::string("nul \0 inside", 12)));
  CHECK(valid_utf8("\xC2\x80"));          // U+0080, the smallest two-byte character
  CHECK(valid_utf8("caf\xC3\xA9"));       // é
  CHECK(valid_utf8("\xE0\xA0\x80"));      // U+0800, the smallest three-byte character
  CHECK(valid_utf8("\xE2\x82\xAC"));      // €
  CHECK(valid_utf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  CHECK(valid_utf8("\xEE\x80\x80"));      // U+E000, just above them
  CHECK(valid_utf8("\xF0\x90\x80\x80"));  // U+10000, the smallest four-byte character
  CHECK(valid_utf8("\xF0\x9F\x98\x80"));  // 😀
  CHECK(valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
}

TEST_CASE("valid_utf8 rejects stray, truncated, overlong, surrogate and out-of-range sequences") {
  CHECK_FALSE(valid_utf8("\x80"));                  // a continuation byte alone
  CHECK_FALSE(valid_utf8("a\xBF"));
  CHECK_FALSE(valid_utf8("\xC3"));                  // truncated at the end
  CHECK_FALSE(valid_utf8("\xE2\x82"));
  CHECK_FALSE(valid_utf8("\xF0\x9F\x98"));
  CHECK_FALSE(valid_utf8("\xC3\x28"));              // a non-continuation byte inside
  CHECK_FALSE(valid_utf8("\xE2\x28\xAC"));
  CHECK_FALSE(valid_utf8("\xC0\xAF"));              // overlong '/'
  CHECK_FALSE(valid_utf8("\xC1\xBF"));
  CHECK_FALSE(valid_utf8("\xE0\x80\xAF"));
  CHECK_FALSE(valid_utf8("\xE0\x9F\xBF"));          // U+07FF in three bytes
  CHECK_FALSE(valid_utf8("\xF0\x80\x80\xAF"));
  CHECK_FALSE(valid_utf8("\xF0\x8F\xBF\xBF"));      // U+FFFF in four bytes
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));          // U+D800, a surrogate
  CHECK_FALSE(valid_utf8("\xED\xBF\xBF"));          // U+DFFF
  CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));      // U+110000
  CHECK_FALSE(valid_utf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(valid_utf8("\xF8\x88\x80\x80\x80"));  // five-byte form
  CHECK_FALSE(valid_utf8("\xFE"));
  CHECK_FALSE(valid_utf8("\xFF"));
}
