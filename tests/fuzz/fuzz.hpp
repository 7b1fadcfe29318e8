// What the fuzz targets share. Each target is one function, LLVMFuzzerTestOneInput, as libFuzzer
// calls it; the project's own driver (driver.cpp) calls it the same way. A target returns
// normally when the input is rejected with an xgrad::Error (that is the wanted outcome for bad
// input); a crash, a sanitizer report, a hang or any other exception is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace xgrad::fuzz {

/// Writes the input to `name` in a scratch folder of this process (removed at exit) and returns
/// its path: for readers that take a path.
std::string scratch_file(const std::string& name, const std::uint8_t* data, std::size_t size);
/// The scratch folder itself.
const std::string& scratch_dir();

/// What the target made of the input: "ok" or the error's message. The project's driver keeps a
/// mutant as a new seed when its outcome (digits and quoted names left out) is one not seen yet,
/// a cheap stand-in for libFuzzer's coverage feedback.
void outcome(const char* what);
/// The outcome noted since the last call, as a key ("" if none), and clears it.
std::string take_outcome();

}  // namespace xgrad::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
