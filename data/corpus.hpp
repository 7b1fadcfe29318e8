// Parallel corpora from files: UTF-8 text, one pair per line, "source<TAB>target".
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include <xgrad/data/tasks.hpp>

namespace xgrad::data {

/// What reading a corpus file skipped.
struct CorpusReport {
  std::size_t lines = 0;    ///< lines read (a final line without newline counts)
  std::size_t kept = 0;     ///< pairs returned
  std::size_t skipped = 0;  ///< malformed lines (see read_tsv)
  std::vector<std::size_t> first_skipped;  ///< 1-based numbers of the first (at most 5) skipped lines
};

/// Reads "source<TAB>target" lines (a trailing '\r' is dropped, and so is a byte-order mark opening
/// the file; text after a second tab belongs to the target). Malformed lines are skipped (no tab,
/// an empty side, invalid UTF-8, a NUL byte, longer than 1 MiB); when any were, one warning goes to
/// `warnings` (if not null) naming the file, how many and the first line numbers with the reason.
/// Throws xgrad::Error naming the file when it cannot be opened, is not a regular file (a folder,
/// a FIFO), looks binary (a NUL byte in its first 64 KiB) or has no usable line.
std::vector<Example> read_tsv(const std::string& path, std::ostream* warnings, CorpusReport* report = nullptr);

/// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(const std::string& text);
/// Why `text` is not a line of text, "a NUL byte" or "invalid UTF-8", or nullptr when it is: the
/// check every line of a corpus and every line to translate passes.
const char* not_text(const std::string& text);

}  // namespace xgrad::data
