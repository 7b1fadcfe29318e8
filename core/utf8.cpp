// The one strict UTF-8 decoder.
#include <xgrad/core/utf8.hpp>

#include <cstdint>

#include <fmt/format.h>

namespace xgrad {

Utf8Char decode_utf8_char(std::string_view text, std::size_t offset) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(offset);
  Utf8Char c;
  c.problem_offset = offset;
  if (lead < 0x80) {
    c.code_point = lead;
    return c;
  }
  std::size_t length;
  char32_t code_point, smallest;
  if ((lead & 0xE0) == 0xC0) length = 2, code_point = lead & 0x1F, smallest = 0x80;
  else if ((lead & 0xF0) == 0xE0) length = 3, code_point = lead & 0x0F, smallest = 0x800;
  else if ((lead & 0xF8) == 0xF0) length = 4, code_point = lead & 0x07, smallest = 0x10000;
  else return c.problem = Utf8Char::Problem::bad_lead, c;
  c.length = length;
  if (offset + length > text.size()) return c.length = 1, c.problem = Utf8Char::Problem::truncated, c;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(offset + k) & 0xC0) != 0x80) {
      c.length = 1, c.problem = Utf8Char::Problem::bad_continuation, c.problem_offset = offset + k;
      return c;
    }
    code_point = (code_point << 6) | (byte(offset + k) & 0x3F);
  }
  c.code_point = code_point;
  if (code_point < smallest) c.problem = Utf8Char::Problem::overlong;
  else if (code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF))
    c.problem = Utf8Char::Problem::not_scalar;
  if (c.problem != Utf8Char::Problem::none) c.length = 1;
  return c;
}

std::string describe_utf8_problem(std::string_view text, const Utf8Char& c) {
  const std::size_t at = c.problem_offset;
  const auto byte = static_cast<unsigned char>(text[at]);
  switch (c.problem) {
    case Utf8Char::Problem::none: return "valid UTF-8";
    case Utf8Char::Problem::bad_lead:
      return fmt::format("invalid UTF-8 at byte {}: 0x{:02x} cannot start a character", at, byte);
    case Utf8Char::Problem::truncated:
      return fmt::format("invalid UTF-8 at byte {}: the text ends inside a {}-byte character", at,
                         (byte & 0xE0) == 0xC0 ? 2 : (byte & 0xF0) == 0xE0 ? 3 : 4);
    case Utf8Char::Problem::bad_continuation:
      return fmt::format("invalid UTF-8 at byte {}: 0x{:02x} is not a continuation byte", at, byte);
    case Utf8Char::Problem::overlong: return fmt::format("invalid UTF-8 at byte {}: overlong encoding", at);
    case Utf8Char::Problem::not_scalar:
      return fmt::format("invalid UTF-8 at byte {}: U+{:04X} is not a Unicode scalar value", at,
                         static_cast<std::uint32_t>(c.code_point));
  }
  return "invalid UTF-8";
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace xgrad
