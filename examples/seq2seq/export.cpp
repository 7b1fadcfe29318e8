// `seq2seq export`: a built-in task's splits as TSV files, the corpus format `train --train` reads.
#include "seq2seq.hpp"

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include <xgrad/utils/atomic_file.hpp>

namespace seq2seq {

int export_command(const DataSettings& data, const std::string& out_dir) {
  const xgrad::data::Splits splits = load_splits(data);
  std::filesystem::create_directories(out_dir);
  const std::pair<const char*, const std::vector<xgrad::data::Example>*> files[] = {
      {"train.tsv", &splits.train}, {"valid.tsv", &splits.valid}, {"test.tsv", &splits.test}};
  for (const auto& [name, pairs] : files) {
    std::string text;
    for (const xgrad::data::Example& pair : *pairs) text += pair.source + "\t" + pair.target + "\n";
    const std::string path = (std::filesystem::path(out_dir) / name).string();
    xgrad::utils::write_file_atomically(path, text, "seq2seq export");
    std::printf("%s: %zu pairs\n", path.c_str(), pairs->size());
  }
  return 0;
}

}  // namespace seq2seq
