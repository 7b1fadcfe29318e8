// Fuzz target: load_tokenizer on an arbitrary tokenizer.json; a tokenizer it accepts must encode
// and decode text (its own symbols included) without failing.
#include "fuzz.hpp"

#include <xgrad/core/error.hpp>
#include <xgrad/data/tokenizer.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  xgrad::fuzz::scratch_file("tokenizer.json", data, size);
  std::unique_ptr<xgrad::data::Tokenizer> tokenizer;
  try {
    tokenizer = xgrad::data::load_tokenizer(xgrad::fuzz::scratch_dir());
  } catch (const xgrad::Error& e) {
    xgrad::fuzz::outcome(e.what());
    return 0;
  }
  // Accepted: it must work on any text, and on every id it has.
  const std::vector<std::int64_t> ids = tokenizer->encode("hello, w\xc3\xb6rld \xe2\x82\xac 12");
  for (const std::int64_t id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= tokenizer->vocab_size()) __builtin_trap();
  }
  std::vector<std::int64_t> all(tokenizer->vocab_size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::int64_t>(i);
  static_cast<void>(tokenizer->decode(all));
  return 0;
}
