// xgrad::Error: the one exception type xgrad throws for bad input. Its message names the op or
// file, shows the shapes, indices or offsets involved, and says what was expected.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace xgrad {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// Text from a file or a user, made safe to put in a message: valid UTF-8 stays as it is (tabs
/// and newlines too, escaped as \t and \n); control characters, DEL and bytes that are not
/// valid UTF-8 become \xNN; beyond `max_bytes` of input the rest is left out and counted
/// ("... (1048576 bytes in all)").
std::string printable(std::string_view text, std::size_t max_bytes = 200);

}  // namespace xgrad
