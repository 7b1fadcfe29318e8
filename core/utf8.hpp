// UTF-8, strictly: one decoder for every place that reads text (corpora, tokenizers, metrics, messages).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace xgrad {

/// What stands at one byte offset of a text.
struct Utf8Char {
  enum class Problem { none, bad_lead, truncated, bad_continuation, overlong, not_scalar };
  char32_t code_point = 0;
  std::size_t length = 1;          ///< bytes of the character (1 when there is a problem)
  Problem problem = Problem::none;
  std::size_t problem_offset = 0;  ///< the byte the problem is at
};

/// Decodes the character starting at byte `offset` (< text.size()). Rejects what the standard
/// forbids: a continuation byte or 0xF8..0xFF as lead, a text ending inside a character, a
/// missing continuation byte, overlong forms, surrogates and code points above U+10FFFF.
Utf8Char decode_utf8_char(std::string_view text, std::size_t offset);

/// "invalid UTF-8 at byte 7: 0xff cannot start a character", and the like.
std::string describe_utf8_problem(std::string_view text, const Utf8Char& c);

/// Appends the UTF-8 bytes of a Unicode scalar value.
void append_utf8(std::string& out, char32_t code_point);

}  // namespace xgrad
