// layer_norm_forward and layer_norm_backward: each row's passes while it sits in L1, rows over the
// threads; both take rows two at a time: the forward's sums of one row fill the waits of the
// other's, and the backward makes both rows' sums and their weight and bias terms in one pass;
// the weight and bias sums per thread, added up at the end.
#include <xgrad/kernels/layer_norm.hpp>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <omp.h>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>
#include <xgrad/kernels/with_flag.hpp>

namespace xgrad::kernels {

namespace {

using row_sums_detail::sum_pair;
using vec::load;
using vec::store;
using vec::Vec;

/// Mean and biased variance of one row, in two passes over it.
inline void row_moments(const float* x, std::size_t d, float& mean, float& var) {
  mean = row_sum(x, d) / static_cast<float>(d);
  var = row_sum_squares(x, d, mean) / static_cast<float>(d);
}

/// The same for two rows, their passes interleaved, each row's sums added in row_moments' order
/// (sum_pair: its numbers, up to a rounding in a tail narrower than a vector).
inline void row_moments_pair(const float* x0, const float* x1, std::size_t d, float& mean0, float& var0, float& mean1,
                             float& var1) {
  float s0, s1;
  sum_pair(
      d, [&](std::size_t i) { return load(x0 + i); }, [&](std::size_t i) { return load(x1 + i); },
      [&](std::size_t i) { return x0[i]; }, [&](std::size_t i) { return x1[i]; }, s0, s1);
  const float m0 = s0 / static_cast<float>(d), m1 = s1 / static_cast<float>(d);
  float q0, q1;
  sum_pair(
      d,
      [&](std::size_t i) {
        const Vec c = load(x0 + i) - m0;
        return c * c;
      },
      [&](std::size_t i) {
        const Vec c = load(x1 + i) - m1;
        return c * c;
      },
      [&](std::size_t i) { return (x0[i] - m0) * (x0[i] - m0); },
      [&](std::size_t i) { return (x1[i] - m1) * (x1[i] - m1); }, q0, q1);
  mean0 = m0;
  mean1 = m1;
  var0 = q0 / static_cast<float>(d);
  var1 = q1 / static_cast<float>(d);
}

/// y = (s - mean) rstd w + b over one row.
inline void normalize(const float* s, std::size_t d, float mean, float rstd, const float* w, const float* b, float* y) {
#pragma omp simd
  for (std::size_t j = 0; j < d; ++j) y[j] = (s[j] - mean) * rstd * w[j] + b[j];
}

/// s = x + residual over one row.
inline void add_row(const float* x, const float* residual, std::size_t d, float* s) {
#pragma omp simd
  for (std::size_t j = 0; j < d; ++j) s[j] = x[j] + residual[j];
}

/// out[k] = v, or out[k] += v when Add.
template <bool Add>
inline void put(float* out, std::size_t k, float v) {
  if constexpr (Add) out[k] += v;
  else out[k] = v;
}

/// The backward of R consecutive rows from r: one pass over the columns for both of each row's
/// sums (sum of g = dy w, sum of g xhat) and the rows' dweight and dbias terms (dy xhat, dy) added
/// to pw and pb (null: not wanted), then ds row by row into ds0 (null: not wanted) and, when Two,
/// ds1, each written or added to (Add0, Add1). Two vector sums per row sum, the tail as a vector
/// of zeros past d: a row's sums are the same whether it goes alone or in a pair, and pw and pb are
/// loaded and stored once for R rows.
template <std::size_t R, bool Add0, bool Two, bool Add1>
void backward_rows(const float* s, const float* dy, std::size_t r, std::size_t d, const float* w, const float* mean,
                   const float* rstd, float* pw, float* pb, float* ds0, float* ds1) {
  Vec sum_g[R][2] = {}, sum_g_xhat[R][2] = {};
  vec::over_lane_pairs(d, [&](std::size_t i, std::size_t lanes, auto half) {
    const Vec wi = vec::load(w + i, lanes, 0.f);
    Vec dw_term = {}, db_term = {};
    for (std::size_t j = 0; j < R; ++j) {
      const Vec g = vec::load(dy + (r + j) * d + i, lanes, 0.f);
      const Vec xhat = (vec::load(s + (r + j) * d + i, lanes, 0.f) - mean[r + j]) * rstd[r + j];
      sum_g[j][half] += g * wi;
      sum_g_xhat[j][half] += g * wi * xhat;
      dw_term += g * xhat;
      db_term += g;
    }
    if (pw) {
      vec::store(pw + i, vec::load(pw + i, lanes, 0.f) + dw_term, lanes);
      vec::store(pb + i, vec::load(pb + i, lanes, 0.f) + db_term, lanes);
    }
  });
  if (!ds0) return;
  for (std::size_t j = 0; j < R; ++j) {
    const float* sr = s + (r + j) * d;
    const float* dyr = dy + (r + j) * d;
    const float m = mean[r + j], rs = rstd[r + j];
    const float mean_g = vec::lanes_sum(sum_g[j][0] + sum_g[j][1]) / static_cast<float>(d);
    const float mean_g_xhat = vec::lanes_sum(sum_g_xhat[j][0] + sum_g_xhat[j][1]) / static_cast<float>(d);
    float* out0 = ds0 + (r + j) * d;
    float* out1 = Two ? ds1 + (r + j) * d : nullptr;
#pragma omp simd
    for (std::size_t k = 0; k < d; ++k) {
      const float xhat = (sr[k] - m) * rs;
      const float v = rs * (dyr[k] * w[k] - mean_g - xhat * mean_g_xhat);
      put<Add0>(out0, k, v);
      if constexpr (Two) put<Add1>(out1, k, v);
    }
  }
}

}  // namespace

void layer_norm_forward(const float* x, const float* residual, float* sum, std::size_t rows, std::size_t d,
                        const float* w, const float* b, float eps, float* mean, float* rstd, float* y) {
  // The row normalized: x, or s = x + residual formed first (written to `sum`).
  const auto row = [&](std::size_t r) {
    if (!residual) return x + r * d;
    add_row(x + r * d, residual + r * d, d, sum + r * d);
    return static_cast<const float*>(sum + r * d);
  };
  // Rows two at a time: a row's sums wait on their adds, and a second row's fill those waits.
  parallel_rows((rows + 1) / 2, 2 * d, [&](std::size_t pair) {
    const std::size_t r = 2 * pair;
    const float* s0 = row(r);
    float m0, var0;
    if (r + 1 == rows) {  // the last row of an odd count
      row_moments(s0, d, m0, var0);
    } else {
      const float* s1 = row(r + 1);
      float m1, var1;
      row_moments_pair(s0, s1, d, m0, var0, m1, var1);
      const float rs1 = 1.f / std::sqrt(var1 + eps);
      mean[r + 1] = m1;
      rstd[r + 1] = rs1;
      normalize(s1, d, m1, rs1, w, b, y + (r + 1) * d);
    }
    const float rs0 = 1.f / std::sqrt(var0 + eps);
    mean[r] = m0;
    rstd[r] = rs0;
    normalize(s0, d, m0, rs0, w, b, y + r * d);
  });
}

void layer_norm_backward(const float* s, const float* dy, std::size_t rows, std::size_t d, const float* w,
                         const float* mean, const float* rstd, GradOut ds0, GradOut ds1, float* dw, float* db) {
  if (!ds0.data) std::swap(ds0, ds1);  // a single target goes first
  // Rows are split into one contiguous range per thread; each thread sums its rows' dweight and
  // dbias into its own slice of `partial`, added up afterwards.
  const int threads = use_threads(rows >= 2 && rows * d >= kParallelWork) ? omp_get_max_threads() : 1;
  const bool sums = dw || db;
  std::vector<float> partial(sums ? static_cast<std::size_t>(threads) * 2 * d : 0, 0.f);  // (threads, 2, D)
  with_flag(ds0.add, [&](auto add0) {
    with_flag(ds1.data != nullptr, [&](auto two) {
      with_flag(ds1.add, [&](auto add1) {
        constexpr bool kAdd0 = decltype(add0)::value, kTwo = decltype(two)::value, kAdd1 = decltype(add1)::value;
        const auto rows_of_thread = [&](std::size_t t, std::size_t nt) {  // thread t of nt
          float* pw = sums ? partial.data() + t * 2 * d : nullptr;  // (D)
          float* pb = sums ? pw + d : nullptr;                      // (D)
          const std::size_t end = rows * (t + 1) / nt;
          for (std::size_t r = rows * t / nt; r < end; r += 2) {
            if (r + 1 < end) {
              backward_rows<2, kAdd0, kTwo, kAdd1>(s, dy, r, d, w, mean, rstd, pw, pb, ds0.data, ds1.data);
            } else {
              backward_rows<1, kAdd0, kTwo, kAdd1>(s, dy, r, d, w, mean, rstd, pw, pb, ds0.data, ds1.data);
            }
          }
        };
        if (threads == 1) {
          rows_of_thread(0, 1);
        } else {
#pragma omp parallel num_threads(threads)
          rows_of_thread(static_cast<std::size_t>(omp_get_thread_num()),
                         static_cast<std::size_t>(omp_get_num_threads()));
        }
      });
    });
  });
  if (!sums) return;
  for (int t = 0; t < threads; ++t) {
    const float* pw = partial.data() + static_cast<std::size_t>(t) * 2 * d;
    for (std::size_t j = 0; j < d; ++j) {
      if (dw) dw[j] += pw[j];
      if (db) db[j] += pw[d + j];
    }
  }
}

}  // namespace xgrad::kernels
