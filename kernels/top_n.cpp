#include <xgrad/kernels/top_n.hpp>

#include <limits>

#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

void top_n(const float* x, std::size_t size, std::size_t n, std::vector<std::size_t>& best) {
  best.clear();
  if (n == 0) return;
  best.reserve(n + 1);
  const auto insert = [&](std::size_t v) {
    if (best.size() == n && !(x[v] > x[best.back()])) return;
    std::size_t at = best.size();
    while (at > 0 && x[v] > x[best[at - 1]]) --at;
    best.insert(best.begin() + static_cast<std::ptrdiff_t>(at), v);
    if (best.size() > n) best.pop_back();
  };
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  vec::over_lanes(size, [&](std::size_t i, std::size_t lanes) {
    if (best.size() < n) {
      for (std::size_t v = i; v < i + lanes; ++v) insert(v);
      return;
    }
    // Only the lanes that beat the n-th held now, in order (lanes past the row are -inf); each
    // is checked again as it comes, against the n-th as the ones before it left it.
    for (unsigned bits = vec::above(vec::load(x + i, lanes, kMinusInf), x[best.back()]); bits != 0; bits &= bits - 1) {
      insert(i + static_cast<std::size_t>(__builtin_ctz(bits)));
    }
  });
}

}  // namespace xgrad::kernels
