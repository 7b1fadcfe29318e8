// xgrad::Error: the one exception type xgrad throws for bad input. Its message names the op or
// file, shows the shapes, indices or offsets involved, and says what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace xgrad {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace xgrad
