// Parallel corpora from "source<TAB>target" files, and the strict UTF-8 check they pass through.
#include <xgrad/data/corpus.hpp>
#include <xgrad/data/utf8.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::data {

namespace {

constexpr std::size_t kLinesShown = 5;

// Why a line is unusable, or nullptr when it gives a pair (then split at the first tab).
const char* line_problem(const std::string& line, std::size_t tab) {
  if (!valid_utf8(line)) return "invalid UTF-8";
  if (line.empty()) return "empty line";
  if (tab == std::string::npos) return "no tab";
  if (tab == 0) return "empty source";
  if (tab + 1 == line.size()) return "empty target";
  return nullptr;
}

}  // namespace

std::vector<Example> read_tsv(const std::string& path, std::ostream* warnings, CorpusReport* report) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) throw Error(fmt::format("read_tsv: '{}' is a folder", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("read_tsv: cannot open '{}': {}", path, std::strerror(errno)));

  std::vector<Example> examples;
  CorpusReport counts;
  std::string reasons;  // "line 3: no tab; line 7: empty target" for the first few skipped lines
  std::string line;
  while (std::getline(in, line)) {
    ++counts.lines;
    if (counts.lines == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // byte-order mark
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t tab = line.find('\t');
    if (const char* problem = line_problem(line, tab)) {
      ++counts.skipped;
      if (counts.first_skipped.size() < kLinesShown) {
        counts.first_skipped.push_back(counts.lines);
        reasons += fmt::format("{}line {}: {}", reasons.empty() ? "" : "; ", counts.lines, problem);
      }
      continue;
    }
    examples.push_back({line.substr(0, tab), line.substr(tab + 1)});
  }
  if (in.bad()) throw Error(fmt::format("read_tsv: reading '{}' failed after line {}", path, counts.lines));
  counts.kept = examples.size();
  if (report) *report = counts;

  const std::string shown = counts.skipped > kLinesShown ? fmt::format("the first {}: ", kLinesShown) : "";
  if (examples.empty()) {
    throw Error(fmt::format("read_tsv: '{}' has no usable 'source<TAB>target' line ({} lines{})", path, counts.lines,
                            counts.skipped == 0 ? "" : fmt::format(", {}{}", shown, reasons)));
  }
  if (counts.skipped > 0 && warnings) {
    *warnings << fmt::format("warning: read_tsv: skipped {} malformed of {} lines in '{}' ({}{})\n", counts.skipped,
                             counts.lines, path, shown, reasons);
  }
  return examples;
}

bool valid_utf8(const std::string& text) {
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Char c = decode_utf8_char(text, i);
    if (c.problem != Utf8Char::Problem::none) return false;
    i += c.length;
  }
  return true;
}

}  // namespace xgrad::data
