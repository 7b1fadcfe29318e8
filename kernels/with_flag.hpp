// A run-time flag made a compile-time one, for loops that must not test it per element.
#pragma once

#include <type_traits>
#include <utility>

namespace xgrad::kernels {

/// Calls f(std::true_type{}) or f(std::false_type{}): inside f, decltype(arg)::value is a constant
/// (and `if (arg)` folds away).
template <class F>
void with_flag(bool flag, F&& f) {
  if (flag) std::forward<F>(f)(std::true_type{});
  else std::forward<F>(f)(std::false_type{});
}

}  // namespace xgrad::kernels
