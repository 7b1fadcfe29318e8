// Softmax and log-softmax over one axis, each a fused forward and a fused backward pass. Along
// the last axis a slice is a contiguous row; along another axis the slices of a block (n, inner)
// are processed a tile of columns at a time, the inner index contiguous.
#include <xgrad/kernels/softmax.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>
#include <xgrad/kernels/vec.hpp>
#include <xgrad/kernels/with_flag.hpp>

namespace xgrad::kernels {

namespace {

// Legend: n = length of the softmax axis, w = columns in a tile (<= kMaxTile), stride = inner.
constexpr std::size_t kMaxTile = 512;
constexpr std::size_t kMinTile = 64;
constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

/// Calls rows(offset, count) for runs of count contiguous rows when the axis is the last one,
/// else columns(offset, w) for each tile of w columns of each (n, inner) block.
template <class Rows, class Columns>
void for_each_slice(const AxisView& v, Rows&& rows, Columns&& columns) {
  if (v.outer == 0 || v.n == 0 || v.inner == 0) return;  // an empty tensor
  if (v.inner == 1) {
    parallel_row_runs(v.outer, v.n, [&](std::size_t first, std::size_t count) { rows(first * v.n, count); });
    return;
  }
  // Tiles of whole cache lines, wide enough for the prefetchers to stream each segment of a
  // row; narrower when there are fewer blocks than threads, so that every thread gets work.
  std::size_t tile = std::min(v.inner, kMaxTile);
  const auto threads = static_cast<std::size_t>(omp_get_max_threads());
  if (v.outer < threads) {
    const std::size_t per_thread = (v.inner + threads - 1) / threads;
    tile = std::min(tile, std::max(kMinTile, (per_thread + 15) / 16 * 16));
  }
  const std::size_t tiles = (v.inner + tile - 1) / tile;
  parallel_rows(v.outer * tiles, v.n * tile, [&](std::size_t t) {
    const std::size_t o = t / tiles, i0 = (t % tiles) * tile;
    columns(o * v.n * v.inner + i0, std::min(tile, v.inner - i0));
  });
}

// --- forward -------------------------------------------------------------------------------------

/// A row's sum of exponentials, taken without its maximum, is used as it is when it lies in
/// [kSmallestSum, kLargestSum]: then 1 / s and every exp(x) are normal floats, and the terms that
/// exp flushes to 0 (below 2^-126) stand for outputs below 2^-96. A row whose sum lies outside
/// (a logit above about 69, all below about -21, +inf or NaN) is taken again with its maximum
/// subtracted.
constexpr float kSmallestSum = 0x1p-30f;
constexpr float kLargestSum = 0x1p100f;

bool sum_as_is(float s) { return s >= kSmallestSum && s <= kLargestSum; }  // false for NaN

/// y = softmax(x) or log_softmax(x) over `count` contiguous rows of n elements: for each row,
/// s = sum exp(x), then y = exp(x) / s or y = x - log s; where s is not taken as it is
/// (sum_as_is), m = max x, s = sum exp(x - m) and y = exp(x - m) / s or (x - m) - log s. One pass
/// over the columns takes the exponentials (and their sum) of row r and the output of row r - 1,
/// so that writing row r - 1 overlaps the exponentials, which keep the core busy. The sum is
/// row_exp_sum's order (two vector sums, the tail into the first).
template <bool kLog>
void forward_rows(const float* x, float* y, std::size_t count, std::size_t n) {
  using vec::load;
  using vec::store;
  using vec::Vec;
  float m_done = 0.f, s_done = 0.f;  // row r - 1's shift (0, or its maximum), and 1 / s (softmax) or log s
  for (std::size_t r = 0; r <= count; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const bool exps = r < count, previous = r > 0;
    Vec s0 = {}, s1 = {};  // the two halves' sums
    vec::over_lane_pairs(n, [&](std::size_t i, std::size_t lanes, auto half) {
      if (exps) {
        const Vec e = vec::exp(load(xr + i, lanes, kMinusInf));
        if (!kLog) store(yr + i, e, lanes);
        (half ? s1 : s0) += e;
      }
      if (previous) {
        float* out = yr - n + i;
        if (kLog) store(out, (load(xr - n + i, lanes, 0.f) - m_done) - s_done, lanes);
        else store(out, load(out, lanes, 0.f) * s_done, lanes);
      }
    });
    if (exps) {
      float sum = vec::lanes_sum(s0 + s1), m = 0.f;
      if (!sum_as_is(sum)) {
        m = row_max(xr, n);
        sum = row_exp_sum(xr, kLog ? nullptr : yr, n, m);
      }
      m_done = m;
      s_done = kLog ? std::log(sum) : 1.f / sum;
    }
  }
}

/// Rows of at most this many vectors go through the short-row kernels: for them the sums and
/// maxima across lanes (a tree of shuffles per row) cost as much as the exponentials. Measured
/// on one core: rows of 4 vectors of 8 (AVX2) 1.4x faster than pipelined one by one, rows of 4
/// of 16 (AVX-512) as fast, 3 of 16 1.25x.
constexpr std::size_t kShortVectors = vec::W >= 16 ? 3 : 4;

/// f(i, lanes) for the kVectors vectors of a row of n elements, (kVectors - 1) W < n <= kVectors W:
/// whole vectors, the last one of the n - i lanes left (all whole with kWhole, n = kVectors W,
/// where every load and store is a plain one). A loop of a known count, unrolled.
template <std::size_t kVectors, bool kWhole, class F>
inline void over_row_vectors(std::size_t n, F f) {
  for (std::size_t j = 0; j < kVectors; ++j) f(j * vec::W, kWhole || j + 1 < kVectors ? vec::W : n - j * vec::W);
}

/// body(kVectors, kWhole), each a std::integral_constant, for rows of n elements of at most
/// kShortVectors vectors, and true; false for longer rows.
template <class Body>
bool with_short_rows(std::size_t n, Body&& body) {
  const auto shape = [&](auto vectors) {
    with_flag(n % vec::W == 0, [&](auto whole) { body(vectors, whole); });
    return true;
  };
  switch ((n + vec::W - 1) / vec::W) {
    case 1: return shape(std::integral_constant<std::size_t, 1>{});
    case 2: return shape(std::integral_constant<std::size_t, 2>{});
    case 3: return shape(std::integral_constant<std::size_t, 3>{});
    case 4:
      if constexpr (kShortVectors >= 4) return shape(std::integral_constant<std::size_t, 4>{});
      return false;
    default: return false;
  }
}

/// forward_rows for rows of kVectors <= kShortVectors vectors, in groups of W rows: each row's
/// exponentials summed to one vector, and the W rows' vectors reduced across their lanes together
/// (vec::lanes_sums): a tree for W rows in about the instructions of three rows' own. Pipelined
/// over the groups as forward_rows is over its rows: one pass over the rows of a group takes their
/// exponentials and the output of the previous group's, so that the tree's waits and the stores
/// overlap the exponentials. A row whose sum is not taken as it is (sum_as_is) is taken again with
/// its maximum subtracted, before the pass that writes it.
template <bool kLog, std::size_t kVectors, bool kWhole>
void forward_short_rows(const float* x, float* y, std::size_t count, std::size_t n) {
  using vec::load;
  using vec::store;
  using vec::Vec;
  using vec::W;
  const std::size_t groups = (count + W - 1) / W;
  const auto rows_of = [&](std::size_t g) { return std::min(W, count - g * W); };  // rows in group g
  const std::size_t group = W * n;                                                  // its elements
  // The reduction's inputs, lane r for row r of a group: the sums of this group's exponentials.
  // Past a group's last row they hold what an earlier group left: each lane of the reduction is
  // its own row's, and those lanes go unused.
  Vec sums[W] = {};
  // A row's last vector when it is not whole, kept here rather than in y, for this group and for
  // the previous one: a load of lanes stored under a mask must wait for the store to reach the cache.
  Vec tails[2][W];
  // The exponentials of row r of group g, exp(x) or exp(x - shift), stored (softmax) and summed.
  const auto take_exps = [&](std::size_t g, std::size_t r, bool shifted, float shift) {
    const float* xr = x + g * group + r * n;
    float* yr = y + g * group + r * n;
    Vec s = {};
    over_row_vectors<kVectors, kWhole>(n, [&](std::size_t i, std::size_t lanes) {
      const Vec v = load(xr + i, lanes, kMinusInf);
      const Vec e = shifted ? vec::exp_nonpositive(v - shift) : vec::exp(v);
      if (!kLog && lanes == W) store(yr + i, e);
      if (!kLog && lanes < W) tails[g % 2][r] = e;
      s = i == 0 ? e : s + e;  // s's numbers, without adding the first vector to 0
    });
    return s;
  };
  Vec m_done = {}, k_done = {};  // (W): group g - 1's shifts (0, or a row's maximum), and 1 / s or log s
  // The pass over group g's rows. In the steady state (groups g - 1 and g both whole) every row
  // takes both parts, a loop with no conditions that the compiler unrolls and schedules.
  const auto pass = [&](std::size_t g, auto steady) {
    const std::size_t at = g * group;  // group g's first element
    const auto rows_or_none = [&](bool exists, std::size_t of) { return steady ? W : exists ? rows_of(of) : 0; };
    const std::size_t rows = rows_or_none(g < groups, g), rows_previous = rows_or_none(g > 0, g - 1);
    const Vec* tail_done = tails[(g + 1) % 2];
    for (std::size_t r = 0; r < W; ++r) {
      if (steady || r < rows) sums[r] = take_exps(g, r, false, 0.f);
      // Rows not whole, the last row first: a store under a mask counts as a store of the whole
      // vector, so that the next row's first loads would wait for it to reach the cache.
      if (steady || r < rows_previous) {
        const std::size_t rd = kWhole ? r : rows_previous - 1 - r;
        const Vec k_r = vec::broadcast_lane(k_done, rd);
        over_row_vectors<kVectors, kWhole>(n, [&](std::size_t i, std::size_t lanes) {
          const float* in = x + at - group + rd * n + i;
          float* out = y + at - group + rd * n + i;
          if (kLog) store(out, (load(in, lanes, 0.f) - vec::broadcast_lane(m_done, rd)) - k_r, lanes);
          else store(out, (lanes == W ? load(out) : tail_done[rd]) * k_r, lanes);
        });
      }
    }
  };
  const std::size_t whole = count / W;  // groups of W rows
  for (std::size_t g = 0; g <= groups; ++g) {
    with_flag(g > 0 && g < whole, [&](auto steady) { pass(g, steady); });
    if (g < groups) {
      Vec s = vec::lanes_sums(sums);  // lanes past the group's last row unused, as in sums
      Vec m = {};
      const unsigned in_range = vec::at_least(s, kSmallestSum) & ~vec::above(s, kLargestSum);
      for (std::size_t r = 0; r < rows_of(g); ++r) {
        if (in_range >> r & 1u) continue;
        m[r] = row_max(x + g * group + r * n, n);
        s[r] = vec::lanes_sum(take_exps(g, r, true, m[r]));
      }
      if (kLog) {
        for (std::size_t r = 0; r < W; ++r) k_done[r] = std::log(s[r]);
      } else {
        k_done = 1.f / s;
      }
      m_done = m;
    }
  }
}

/// forward_rows, or forward_short_rows for rows of at most kShortVectors vectors.
template <bool kLog>
void forward_any_rows(const float* x, float* y, std::size_t count, std::size_t n) {
  const bool short_rows = with_short_rows(n, [&](auto vectors, auto whole) {
    forward_short_rows<kLog, decltype(vectors)::value, decltype(whole)::value>(x, y, count, n);
  });
  if (!short_rows) forward_rows<kLog>(x, y, count, n);
}

/// forward_row for w columns at once: element (k, i) at k * stride + i. Three passes over the
/// tile (max, sum of exp, output: exp computed again rather than y read back and rescaled).
void forward_columns(const float* x, float* y, std::size_t n, std::size_t stride, std::size_t w, bool log) {
  float m[kMaxTile], s[kMaxTile];  // (w)
  std::fill(m, m + w, kMinusInf);
  std::fill(s, s + w, 0.f);
  for (std::size_t k = 0; k < n; ++k) {
    const float* xk = x + k * stride;
#pragma omp simd
    for (std::size_t i = 0; i < w; ++i) m[i] = xk[i] > m[i] ? xk[i] : m[i];
  }
  for (std::size_t k = 0; k < n; ++k) {
    const float* xk = x + k * stride;
    vec::over_lanes(w, [&](std::size_t i, std::size_t lanes) {
      vec::store(s + i, vec::load(s + i, lanes, 0.f) + vec::exp_nonpositive(vec::load(xk + i, lanes, 0.f) - vec::load(m + i, lanes, 0.f)), lanes);
    });
  }
  for (std::size_t i = 0; i < w; ++i) s[i] = log ? std::log(s[i]) : 1.f / s[i];
  for (std::size_t k = 0; k < n; ++k) {
    const float* xk = x + k * stride;
    float* yk = y + k * stride;
    if (log) {
#pragma omp simd
      for (std::size_t i = 0; i < w; ++i) yk[i] = (xk[i] - m[i]) - s[i];
    } else {
      vec::over_lanes(w, [&](std::size_t i, std::size_t lanes) {
        const vec::Vec e = vec::exp_nonpositive(vec::load(xk + i, lanes, 0.f) - vec::load(m + i, lanes, 0.f));
        vec::store(yk + i, e * vec::load(s + i, lanes, 0.f), lanes);
      });
    }
  }
}

void forward(const float* x, float* y, const AxisView& v, bool log) {
  for_each_slice(
      v,
      [&](std::size_t at, std::size_t count) {
        if (log) forward_any_rows<true>(x + at, y + at, count, v.n);
        else forward_any_rows<false>(x + at, y + at, count, v.n);
      },
      [&](std::size_t at, std::size_t w) { forward_columns(x + at, y + at, v.n, v.inner, w, log); });
}

// --- backward ------------------------------------------------------------------------------------

/// softmax:     dx = y (dy - sum dy y);
/// log_softmax: dx = dy - exp(y) sum dy.    One row of n elements.
void backward_row(const float* y, const float* dy, float* dx, std::size_t n, bool log) {
  if (log) {
    const float s = row_sum(dy, n);
    vec::over_lanes(n, [&](std::size_t k, std::size_t lanes) {
      vec::store(dx + k, vec::load(dy + k, lanes, 0.f) - vec::exp_nonpositive(vec::load(y + k, lanes, 0.f)) * s, lanes);
    });
  } else {
    const float s = row_dot(dy, y, n);
#pragma omp simd
    for (std::size_t k = 0; k < n; ++k) dx[k] = y[k] * (dy[k] - s);
  }
}

/// backward_row for rows of kVectors <= kShortVectors vectors, W rows at a time: each row's
/// products (softmax) or gradients (log-softmax) summed elementwise into one vector, the W rows'
/// vectors across their lanes together (vec::lanes_sums), then each row's dx.
template <bool kLog, std::size_t kVectors, bool kWhole>
void backward_short_rows(const float* y, const float* dy, float* dx, std::size_t count, std::size_t n) {
  using vec::load;
  using vec::Vec;
  using vec::W;
  Vec part[W] = {};  // lane r: row r's sum; past a group's last row what an earlier group left, unused
  for (std::size_t first = 0; first < count; first += W) {
    const std::size_t rows = std::min(W, count - first), at = first * n;
    for (std::size_t r = 0; r < rows; ++r) {
      Vec s = {};
      over_row_vectors<kVectors, kWhole>(n, [&](std::size_t i, std::size_t lanes) {
        const std::size_t k = at + r * n + i;
        const Vec term = kLog ? load(dy + k, lanes, 0.f) : load(dy + k, lanes, 0.f) * load(y + k, lanes, 0.f);
        s = i == 0 ? term : s + term;
      });
      part[r] = s;
    }
    const Vec sums = vec::lanes_sums(part);
    for (std::size_t r = 0; r < rows; ++r) {
      const Vec s = vec::broadcast_lane(sums, r);
      over_row_vectors<kVectors, kWhole>(n, [&](std::size_t i, std::size_t lanes) {
        const std::size_t k = at + r * n + i;
        const Vec g = load(dy + k, lanes, 0.f);
        if (kLog) vec::store(dx + k, g - vec::exp_nonpositive(load(y + k, lanes, 0.f)) * s, lanes);
        else vec::store(dx + k, load(y + k, lanes, 0.f) * (g - s), lanes);
      });
    }
  }
}

/// backward_row over `count` rows, or backward_short_rows for rows of at most kShortVectors vectors.
template <bool kLog>
void backward_any_rows(const float* y, const float* dy, float* dx, std::size_t count, std::size_t n) {
  const bool short_rows = with_short_rows(n, [&](auto vectors, auto whole) {
    backward_short_rows<kLog, decltype(vectors)::value, decltype(whole)::value>(y, dy, dx, count, n);
  });
  if (!short_rows) {
    for (std::size_t r = 0; r < count; ++r) backward_row(y + r * n, dy + r * n, dx + r * n, n, kLog);
  }
}

/// backward_row for w columns at once: element (k, i) at k * stride + i.
void backward_columns(const float* y, const float* dy, float* dx, std::size_t n, std::size_t stride, std::size_t w,
                      bool log) {
  float s[kMaxTile];  // (w)
  std::fill(s, s + w, 0.f);
  for (std::size_t k = 0; k < n; ++k) {
    const float* yk = y + k * stride;
    const float* dyk = dy + k * stride;
#pragma omp simd
    for (std::size_t i = 0; i < w; ++i) s[i] += log ? dyk[i] : dyk[i] * yk[i];
  }
  for (std::size_t k = 0; k < n; ++k) {
    const float* yk = y + k * stride;
    const float* dyk = dy + k * stride;
    float* dxk = dx + k * stride;
    if (log) {
      vec::over_lanes(w, [&](std::size_t i, std::size_t lanes) {
        const vec::Vec e = vec::exp_nonpositive(vec::load(yk + i, lanes, 0.f));
        vec::store(dxk + i, vec::load(dyk + i, lanes, 0.f) - e * vec::load(s + i, lanes, 0.f), lanes);
      });
    } else {
#pragma omp simd
      for (std::size_t i = 0; i < w; ++i) dxk[i] = yk[i] * (dyk[i] - s[i]);
    }
  }
}

void backward(const float* y, const float* dy, float* dx, const AxisView& v, bool log) {
  for_each_slice(
      v,
      [&](std::size_t at, std::size_t count) {
        if (log) backward_any_rows<true>(y + at, dy + at, dx + at, count, v.n);
        else backward_any_rows<false>(y + at, dy + at, dx + at, count, v.n);
      },
      [&](std::size_t at, std::size_t w) { backward_columns(y + at, dy + at, dx + at, v.n, v.inner, w, log); });
}

}  // namespace

void softmax_forward(const float* x, float* y, const AxisView& v) { forward(x, y, v, false); }

void softmax_backward(const float* y, const float* dy, float* dx, const AxisView& v) { backward(y, dy, dx, v, false); }

void log_softmax_forward(const float* x, float* y, const AxisView& v) { forward(x, y, v, true); }

void log_softmax_backward(const float* y, const float* dy, float* dx, const AxisView& v) {
  backward(y, dy, dx, v, true);
}

double log_sum_exp(const float* x, std::size_t n) {
  const float m = row_max(x, n);
  return static_cast<double>(m) + std::log(static_cast<double>(row_exp_sum(x, nullptr, n, m)));
}

}  // namespace xgrad::kernels
