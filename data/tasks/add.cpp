// The `add` task: "123+4567" -> "4690".
#include <xgrad/data/detail/tasks.hpp>

#include <fmt/format.h>

namespace xgrad::data::detail {

namespace {

std::uint64_t power_of_ten(int exponent) {
  std::uint64_t value = 1;
  for (int i = 0; i < exponent; ++i) value *= 10;
  return value;
}

// A digit count uniform in 1..max_add_digits, then a number with exactly that many digits.
std::uint64_t draw_operand(Generator& generator) {
  const int digits = 1 + static_cast<int>(generator.integer(max_add_digits));
  const std::uint64_t low = digits == 1 ? 0 : power_of_ten(digits - 1);
  return low + generator.integer(power_of_ten(digits) - low);
}

}  // namespace

Example draw_add_example(Generator& generator) {
  const std::uint64_t a = draw_operand(generator);
  const std::uint64_t b = draw_operand(generator);
  return {fmt::format("{}+{}", a, b), fmt::format("{}", a + b)};
}

std::uint64_t add_source_capacity() {
  const std::uint64_t operands = power_of_ten(max_add_digits);  // 0 .. 10^max - 1
  return operands * operands;
}

}  // namespace xgrad::data::detail
