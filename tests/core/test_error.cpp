// printable(): bytes from files and users made safe for error messages.
#include <doctest/doctest.h>

#include <string>

#include <xgrad/core/error.hpp>

using xgrad::printable;

TEST_CASE("printable keeps valid UTF-8 text and escapes what a terminal would not show as text") {
  CHECK(printable("model.safetensors") == "model.safetensors");
  CHECK(printable("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("tab\there\nline\r") == "tab\\there\\nline\\r");
  CHECK(printable("back\\slash") == "back\\\\slash");
  CHECK(printable("\x1b[31mred\x7f") == "\\x1b[31mred\\x7f");
  CHECK(printable("\xc2\x85") == "\\u0085");  // a C1 control character
}

TEST_CASE("printable escapes every byte that is not valid UTF-8") {
  CHECK(printable("\xff\xfe") == "\\xff\\xfe");
  CHECK(printable("ok\xc3(") == "ok\\xc3(");              // a lead byte without its continuation
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");          // overlong
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
}

TEST_CASE("printable shortens long text and says how long it was") {
  CHECK(printable(std::string(300, 'a')) == std::string(200, 'a') + "... (300 bytes in all)");
  CHECK(printable(std::string(10, 'a'), 4) == "aaaa... (10 bytes in all)");
  // Cut inside a character: the piece is left out, not shown as invalid bytes.
  CHECK(printable("ab\xe2\x82\xac", 3) == "ab... (5 bytes in all)");
}
