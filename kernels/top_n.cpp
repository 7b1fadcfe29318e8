#include <xgrad/kernels/top_n.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <numeric>

#include <xgrad/kernels/vec.hpp>

namespace xgrad::kernels {

namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

/// Whether a ranks before b: the larger, a NaN after every number.
inline bool beats(float a, float b) { return a > b || (b != b && a == a); }

/// The order of the result: index a before index b when x[a] beats x[b], or neither beats the
/// other and a is the lower index.
struct RanksBefore {
  const float* x;
  bool operator()(std::size_t a, std::size_t b) const { return beats(x[a], x[b]) || (!beats(x[b], x[a]) && a < b); }
};

/// One pass, inserting: a value enters if it beats the n-th held so far. Once n numbers are held,
/// one compare per vector finds the lanes that do, and each is checked again as it comes.
void top_n_by_insertion(const float* x, std::size_t size, std::size_t n, std::vector<std::size_t>& best) {
  best.reserve(n + 1);
  const auto insert = [&](std::size_t v) {
    if (best.size() == n && !beats(x[v], x[best.back()])) return;
    std::size_t at = best.size();
    while (at > 0 && beats(x[v], x[best[at - 1]])) --at;
    best.insert(best.begin() + static_cast<std::ptrdiff_t>(at), v);
    if (best.size() > n) best.pop_back();
  };
  vec::over_lanes(size, [&](std::size_t i, std::size_t lanes) {
    const float nth = best.size() < n ? std::numeric_limits<float>::quiet_NaN() : x[best.back()];
    if (nth != nth) {  // fewer than n held, or a NaN among them: any number may enter
      for (std::size_t v = i; v < i + lanes; ++v) insert(v);
      return;
    }
    for (unsigned bits = vec::above(vec::load(x + i, lanes, kMinusInf), nth); bits != 0; bits &= bits - 1) {
      insert(i + static_cast<std::size_t>(__builtin_ctz(bits)));
    }
  });
}

/// All the indices, the n first put in order: for n near the row's size, where insertions would
/// each move up to n held indices.
void top_n_by_selection(const float* x, std::size_t size, std::size_t n, std::vector<std::size_t>& best) {
  best.resize(size);
  std::iota(best.begin(), best.end(), std::size_t{0});
  const auto nth = best.begin() + static_cast<std::ptrdiff_t>(n);
  if (n < size) std::nth_element(best.begin(), nth, best.end(), RanksBefore{x});
  std::sort(best.begin(), nth, RanksBefore{x});
  best.resize(n);
}

}  // namespace

void top_n(const float* x, std::size_t size, std::size_t n, std::vector<std::size_t>& best) {
  best.clear();
  if (n == 0) return;
  if (n > vec::W) {
    if (static_cast<double>(n) * n > 4.0 * static_cast<double>(size)) {
      return top_n_by_selection(x, size, std::min(n, size), best);
    }
    return top_n_by_insertion(x, size, n, best);
  }
  // Each lane's maximum over the row is a value of the row: when the n-th largest of the W lane
  // maxima is a number t, at least n values are >= t, and the n largest are among them.
  vec::Vec lane_max = vec::Vec{} + kMinusInf;
  vec::over_lanes(size, [&](std::size_t i, std::size_t lanes) {
    lane_max = vec::max(lane_max, vec::load(x + i, lanes, kMinusInf));
  });
  std::array<float, vec::W> maxima;
  vec::store(maxima.data(), lane_max);
  const auto nth = maxima.begin() + static_cast<std::ptrdiff_t>(n - 1);
  std::nth_element(maxima.begin(), nth, maxima.end(), std::greater<float>());
  const float t = *nth;
  // Fewer than n lanes with a number, or -inf among the n largest: no bound.
  if (t == kMinusInf) return top_n_by_insertion(x, size, n, best);
  vec::over_lanes(size, [&](std::size_t i, std::size_t lanes) {
    for (unsigned bits = vec::at_least(vec::load(x + i, lanes, kMinusInf), t); bits != 0; bits &= bits - 1) {
      best.push_back(i + static_cast<std::size_t>(__builtin_ctz(bits)));
    }
  });
  // No NaN is >= t: the candidates are numbers.
  std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(n), best.end(), RanksBefore{x});
  best.resize(n);
}

}  // namespace xgrad::kernels
