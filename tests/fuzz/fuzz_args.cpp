// Fuzz target: the seq2seq program's args.json (TrainSettings), as `train --resume` reads it:
// parsed, checked, and turned into a model configuration.
#include "fuzz.hpp"

#include "../../examples/seq2seq/seq2seq.hpp"

#include <xgrad/core/error.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  xgrad::fuzz::scratch_file("args.json", data, size);
  try {
    const std::optional<seq2seq::TrainSettings> settings = seq2seq::TrainSettings::load(xgrad::fuzz::scratch_dir());
    if (!settings) __builtin_trap();  // the file is there: it loads or throws
    static_cast<void>(settings->model.config(40));
  } catch (const xgrad::Error& e) {
    xgrad::fuzz::outcome(e.what());
  }
  return 0;
}
