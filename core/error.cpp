// Bytes from outside made safe for an error message.
#include <xgrad/core/error.hpp>

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include <xgrad/core/utf8.hpp>

namespace xgrad {

std::string printable(std::string_view text, std::size_t max_bytes) {
  const std::string_view shown = text.substr(0, std::min(text.size(), max_bytes));
  std::string out;
  out.reserve(shown.size());
  for (std::size_t i = 0; i < shown.size();) {
    const Utf8Char c = decode_utf8_char(shown, i);
    const auto byte = static_cast<unsigned char>(shown[i]);
    if (c.problem != Utf8Char::Problem::none) {
      // Cut off inside a character by max_bytes: leave the piece out, it is counted below.
      if (c.problem == Utf8Char::Problem::truncated && shown.size() < text.size()) break;
      out += fmt::format("\\x{:02x}", byte);
      i += 1;
      continue;
    }
    if (c.code_point == '\t') out += "\\t";
    else if (c.code_point == '\n') out += "\\n";
    else if (c.code_point == '\r') out += "\\r";
    else if (c.code_point == '\\') out += "\\\\";
    else if (c.code_point < 0x20 || c.code_point == 0x7f) out += fmt::format("\\x{:02x}", byte);
    else if (c.code_point >= 0x80 && c.code_point < 0xa0) out += fmt::format("\\u{:04x}", std::uint32_t(c.code_point));
    else out.append(shown.substr(i, c.length));
    i += c.length;
  }
  if (shown.size() < text.size()) out += fmt::format("... ({} bytes in all)", text.size());
  return out;
}

}  // namespace xgrad
