// Reductions: sums accumulate in double over contiguous runs of the input, one reduced run at a
// time; broadcasts walk the full tensor in contiguous segments of its last run; max scans
// (outer, axis, inner) with the inner index contiguous.
#include <xgrad/kernels/reduce.hpp>

#include <algorithm>

#include <xgrad/kernels/parallel.hpp>
#include <xgrad/kernels/row_sums.hpp>

namespace xgrad::kernels {

namespace {

/// out(o, i) += sum_k f(in(o, k, i)) for `in` seen as (outer, n, inner).
template <class In, class F>
void sum_over_axis(const In* in, double* out, const AxisView& v, F f) {
  if (v.inner == 1 && v.outer == 1) {  // one long row: split it over the threads
    constexpr std::int64_t kBlock = 4096;
    const auto blocks = static_cast<std::int64_t>((v.n + kBlock - 1) / kBlock);
    const auto n = static_cast<std::int64_t>(v.n);
    const auto block_sum = [&](std::int64_t b) {
      const std::int64_t end = std::min(n, (b + 1) * kBlock);
      double part = 0;
#pragma omp simd reduction(+ : part)
      for (std::int64_t k = b * kBlock; k < end; ++k) part += static_cast<double>(f(in[k]));
      return part;
    };
    double total = 0;
    if (use_threads(v.n >= 4 * kParallelWork)) {
#pragma omp parallel for reduction(+ : total) schedule(static)
      for (std::int64_t b = 0; b < blocks; ++b) total += block_sum(b);
    } else {
      for (std::int64_t b = 0; b < blocks; ++b) total += block_sum(b);
    }
    out[0] += total;
  } else if (v.inner == 1) {
    parallel_rows(v.outer, v.n, [&](std::size_t o) {
      const In* row = in + o * v.n;
      double part = 0;
#pragma omp simd reduction(+ : part)
      for (std::size_t k = 0; k < v.n; ++k) part += static_cast<double>(f(row[k]));
      out[o] += part;
    });
  } else {
    parallel_rows(v.outer, v.n * v.inner, [&](std::size_t o) {
      double* dst = out + o * v.inner;  // (inner)
      for (std::size_t k = 0; k < v.n; ++k) {
        const In* src = in + (o * v.n + k) * v.inner;  // (inner)
#pragma omp simd
        for (std::size_t i = 0; i < v.inner; ++i) dst[i] += static_cast<double>(f(src[i]));
      }
    });
  }
}

/// sum f(x) over the reduced runs, in double, laid out as the reduced shape. The last reduced
/// run goes first, each pass shrinking the data.
template <class F>
std::vector<double> sum_reduced(const float* x, std::vector<Run> runs, F f) {
  auto last_reduced = [&runs] {
    for (std::size_t r = runs.size(); r-- > 0;) {
      if (runs[r].reduced) return r;
    }
    return runs.size();
  };
  std::vector<double> current, next;
  bool from_input = true;
  for (std::size_t r = last_reduced(); r < runs.size(); r = last_reduced()) {
    AxisView v;
    for (std::size_t q = 0; q < runs.size(); ++q) {
      if (q < r) v.outer *= runs[q].size;
      else if (q == r) v.n = runs[q].size;
      else v.inner *= runs[q].size;
    }
    next.assign(v.outer * v.inner, 0.0);
    if (from_input) sum_over_axis(x, next.data(), v, f);
    else sum_over_axis(current.data(), next.data(), v, [](double value) { return value; });
    current.swap(next);
    from_input = false;
    runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(r));
  }
  if (from_input) {  // nothing reduced
    std::size_t size = 1;
    for (const Run& run : runs) size *= run.size;
    current.resize(size);
    for (std::size_t i = 0; i < size; ++i) current[i] = f(x[i]);
  }
  return current;
}

/// Walks a tensor made of `runs` and the reduced tensor it pairs with (its kept runs only), in
/// contiguous segments of the last run: segment(offset, reduced_offset, length, step) stands for
/// elements offset + j, j < length, paired with reduced_offset + j * step (step 0 when the last
/// run is reduced: one value for the whole segment).
template <class Segment>
void for_each_segment(const std::vector<Run>& runs, Segment&& segment) {
  const std::size_t last = runs.size() - 1;
  std::vector<std::size_t> stride(runs.size()), reduced_stride(runs.size()), index(runs.size(), 0);
  std::size_t total = 1, reduced_total = 1;
  for (std::size_t r = runs.size(); r-- > 0;) {
    stride[r] = total;
    reduced_stride[r] = runs[r].reduced ? 0 : reduced_total;
    total *= runs[r].size;
    if (!runs[r].reduced) reduced_total *= runs[r].size;
  }
  if (total == 0) return;
  const std::size_t length = runs[last].size, step = runs[last].reduced ? 0 : 1;
  std::size_t offset = 0, reduced_offset = 0;
  for (std::size_t done = 0; done < total; done += length) {
    segment(offset, reduced_offset, length, step);
    for (std::size_t r = last; r-- > 0;) {  // odometer over the runs before the last
      offset += stride[r];
      reduced_offset += reduced_stride[r];
      if (++index[r] < runs[r].size) break;
      offset -= stride[r] * runs[r].size;
      reduced_offset -= reduced_stride[r] * runs[r].size;
      index[r] = 0;
    }
  }
}

/// out = f(in, g broadcast over the reduced runs) elementwise, `in` and `out` of the full shape.
template <class F>
void broadcast_apply(const std::vector<Run>& runs, const float* in, const float* g, float* out, F f) {
  for_each_segment(runs, [&](std::size_t at, std::size_t g_at, std::size_t length, std::size_t step) {
    const float* a = in + at;
    float* o = out + at;
    if (step == 0) {
      const float b = g[g_at];
#pragma omp simd
      for (std::size_t j = 0; j < length; ++j) o[j] = f(a[j], b);
    } else {
      const float* b = g + g_at;
#pragma omp simd
      for (std::size_t j = 0; j < length; ++j) o[j] = f(a[j], b[j]);
    }
  });
}

/// Whether `candidate` replaces `best` as the maximum: strictly larger (so the first of equal
/// values stays), or the first NaN (NaN propagates, as in PyTorch).
inline bool beats(float candidate, float best) {
  return candidate > best || (candidate != candidate && best == best);
}

}  // namespace

std::vector<Run> runs_of(const Shape& shape, const std::vector<bool>& reduced) {
  std::vector<Run> runs;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (!runs.empty() && runs.back().reduced == reduced[d]) runs.back().size *= shape[d];
    else runs.push_back({shape[d], reduced[d]});
  }
  if (runs.empty()) runs.push_back({1, false});  // a 0-d tensor
  return runs;
}

std::vector<double> reduce_sum(const float* x, const std::vector<Run>& runs) {
  return sum_reduced(x, runs, [](float value) { return value; });
}

std::vector<double> reduce_sum_squares(const float* x, const std::vector<Run>& runs) {
  return sum_reduced(x, runs, [](float d) { return d * d; });
}

void broadcast_sub(const std::vector<Run>& runs, const float* x, const float* m, float* out) {
  broadcast_apply(runs, x, m, out, [](float a, float mean) { return a - mean; });
}

void broadcast_scale(const std::vector<Run>& runs, const float* g, float scale, float* out) {
  // `in` is only read through f's first argument, which is ignored: pass the output itself.
  broadcast_apply(runs, out, g, out, [scale](float, float gv) { return gv * scale; });
}

void broadcast_mul_scale(const std::vector<Run>& runs, const float* d, const float* g, float scale, float* out) {
  broadcast_apply(runs, d, g, out, [scale](float dv, float gv) { return dv * gv * scale; });
}

void max_along_axis(const float* x, float* values, std::int64_t* indices, const AxisView& v) {
  if (v.inner == 1) {
    // Per row: the largest value in one vectorized pass (counting NaNs alongside), then the
    // first position holding it (or holding a NaN).
    parallel_rows(v.outer, v.n, [&](std::size_t o) {
      const float* row = x + o * v.n;
      float best = row_max(row, v.n);
      int nans = 0;
#pragma omp simd reduction(+ : nans)
      for (std::size_t k = 0; k < v.n; ++k) nans += row[k] != row[k];
      std::size_t k = 0;
      if (nans > 0) {
        while (row[k] == row[k]) ++k;
        best = row[k];
      } else {
        while (row[k] != best) ++k;
      }
      values[o] = best;
      indices[o] = static_cast<std::int64_t>(k);
    });
    return;
  }
  parallel_rows(v.outer, v.n * v.inner, [&](std::size_t o) {
    float* best = values + o * v.inner;            // (inner)
    std::int64_t* best_k = indices + o * v.inner;  // (inner)
    const float* first = x + o * v.n * v.inner;
    for (std::size_t i = 0; i < v.inner; ++i) {
      best[i] = first[i];
      best_k[i] = 0;
    }
    for (std::size_t k = 1; k < v.n; ++k) {
      const float* src = x + (o * v.n + k) * v.inner;  // (inner)
      const auto kk = static_cast<std::int64_t>(k);
#pragma omp simd
      for (std::size_t i = 0; i < v.inner; ++i) {
        const bool take = beats(src[i], best[i]);
        best[i] = take ? src[i] : best[i];
        best_k[i] = take ? kk : best_k[i];
      }
    }
  });
}

}  // namespace xgrad::kernels
