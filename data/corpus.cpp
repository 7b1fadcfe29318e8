// Parallel corpora from "source<TAB>target" files, and the strict UTF-8 check they pass through.
#include <xgrad/data/corpus.hpp>
#include <xgrad/core/utf8.hpp>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <ostream>
#include <string_view>
#include <vector>

#include <sys/stat.h>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::data {

namespace {

constexpr std::size_t kLinesShown = 5;
/// Longer lines are skipped unread: no sentence pair is a megabyte, and a file without newlines
/// must not be taken into memory whole.
constexpr std::size_t kMaxLineBytes = std::size_t(1) << 20;

// Why a line is unusable, or nullptr when it gives a pair (then split at the first tab).
const char* line_problem(const std::string& line, std::size_t tab) {
  if (const char* problem = not_text(line)) return problem;
  if (line.empty()) return "empty line";
  if (tab == std::string::npos) return "no tab";
  if (tab == 0) return "empty source";
  if (tab + 1 == line.size()) return "empty target";
  return nullptr;
}

/// The lines of a file, read in blocks; a line longer than kMaxLineBytes is returned cut short
/// with `too_long` set, and the rest of it is skipped without being kept.
class LineReader {
 public:
  explicit LineReader(std::istream& in) : in_(in), block_(1 << 16) {}

  bool next(std::string& line, bool& too_long) {
    line.clear();
    too_long = false;
    bool any = false;
    for (;;) {
      if (pos_ == end_) {
        in_.read(block_.data(), static_cast<std::streamsize>(block_.size()));
        end_ = static_cast<std::size_t>(in_.gcount());
        pos_ = 0;
        if (end_ == 0) return any;
      }
      any = true;
      const char* begin = block_.data() + pos_;
      const auto* newline = static_cast<const char*>(std::memchr(begin, '\n', end_ - pos_));
      const std::size_t n = newline ? static_cast<std::size_t>(newline - begin) : end_ - pos_;
      if (!too_long) {
        const std::size_t room = kMaxLineBytes - line.size();
        line.append(begin, std::min(n, room));
        if (n > room) too_long = true;
      }
      pos_ += n;
      if (newline) {
        ++pos_;
        return true;
      }
    }
  }
  /// The first bytes of the file (for telling a binary file), before any line is read.
  std::string_view peek() {
    if (end_ == 0) {
      in_.read(block_.data(), static_cast<std::streamsize>(block_.size()));
      end_ = static_cast<std::size_t>(in_.gcount());
    }
    return {block_.data(), end_};
  }

 private:
  std::istream& in_;
  std::vector<char> block_;
  std::size_t pos_ = 0, end_ = 0;
};

/// A corpus must be a regular file: it is read again when a run resumes, and opening a FIFO
/// without a writer would wait forever.
void check_regular_file(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    throw Error(fmt::format("read_tsv: cannot open '{}': {}", path, std::strerror(errno)));
  }
  if (S_ISREG(info.st_mode)) return;
  const char* kind = S_ISDIR(info.st_mode)    ? "a folder"
                     : S_ISFIFO(info.st_mode) ? "a FIFO (named pipe)"
                     : S_ISCHR(info.st_mode)  ? "a character device"
                     : S_ISBLK(info.st_mode)  ? "a block device"
                     : S_ISSOCK(info.st_mode) ? "a socket"
                                              : "not a regular file";
  throw Error(fmt::format("read_tsv: '{}' is {}, expected a regular file of 'source<TAB>target' lines (a corpus is "
                          "read again when a run resumes: write a stream to a file first)",
                          path, kind));
}

}  // namespace

std::vector<Example> read_tsv(const std::string& path, std::ostream* warnings, CorpusReport* report) {
  check_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("read_tsv: cannot open '{}': {}", path, std::strerror(errno)));
  LineReader lines(in);
  const std::string_view head = lines.peek();
  if (const std::size_t nul = head.find('\0'); nul != std::string_view::npos) {
    throw Error(fmt::format("read_tsv: '{}' looks like a binary file (a NUL byte at offset {}), expected UTF-8 text "
                            "of 'source<TAB>target' lines",
                            path, nul));
  }

  std::vector<Example> examples;
  CorpusReport counts;
  std::string reasons;  // "line 3: no tab; line 7: empty target" for the first few skipped lines
  std::string line;
  bool too_long = false;
  while (lines.next(line, too_long)) {
    ++counts.lines;
    if (counts.lines == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // byte-order mark
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t tab = line.find('\t');
    if (const char* problem = too_long ? "longer than 1 MiB" : line_problem(line, tab)) {
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

const char* not_text(const std::string& text) {
  if (text.find('\0') != std::string::npos) return "a NUL byte";
  if (!valid_utf8(text)) return "invalid UTF-8";
  return nullptr;
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
