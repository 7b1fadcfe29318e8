// Fuzz target: read_tsv on arbitrary bytes; every pair it keeps must be two non-empty UTF-8 sides.
#include "fuzz.hpp"

#include <xgrad/core/error.hpp>
#include <xgrad/data/corpus.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = xgrad::fuzz::scratch_file("input.tsv", data, size);
  try {
    xgrad::data::CorpusReport report;
    const auto pairs = xgrad::data::read_tsv(path, nullptr, &report);
    if (report.kept != pairs.size() || report.kept + report.skipped != report.lines) __builtin_trap();
    for (const xgrad::data::Example& pair : pairs) {
      if (pair.source.empty() || pair.target.empty()) __builtin_trap();
      if (!xgrad::data::valid_utf8(pair.source) || !xgrad::data::valid_utf8(pair.target)) __builtin_trap();
    }
  } catch (const xgrad::Error& e) {
    xgrad::fuzz::outcome(e.what());
  }
  return 0;
}
