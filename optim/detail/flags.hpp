// Compile-time flags for update kernels: a loop whose options are template constants has no
// branches left in it, so the compiler vectorizes it.
#pragma once

#include <type_traits>

namespace xgrad::optim::detail {

/// Calls f(std::true_type{}) or f(std::false_type{}): inside f, decltype(arg)::value is a constant.
template <class F>
void with_flag(bool flag, F&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

}  // namespace xgrad::optim::detail
