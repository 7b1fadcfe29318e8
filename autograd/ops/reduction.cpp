// Reductions: sum, mean and var over any set of axes, max and argmax along one axis.
// Sums accumulate in double over contiguous runs of the input, one reduced run at a time; max
// scans (outer, axis, inner) with the inner index contiguous.
#include <xgrad/autograd/ops/reduction.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/axis_view.hpp>
#include <xgrad/kernels/parallel.hpp>

namespace xgrad {

namespace {

using kernels::AxisView;
using kernels::parallel_rows;

/// Which axes a reduction over `axes` removes. An empty list means every axis, as PyTorch's
/// dim=[] (and dim=None). A 0-d tensor takes axis 0 or -1, as PyTorch, and reduces nothing.
std::vector<bool> reduced_axes(const char* op, const std::vector<std::int64_t>& axes, std::size_t rank) {
  std::vector<bool> reduced(rank, axes.empty());
  for (std::size_t axis : normalize_axes(op, axes, std::max<std::size_t>(rank, 1))) {
    if (axis < rank) reduced[axis] = true;
  }
  return reduced;
}

/// The result's shape: reduced axes kept with size 1 or dropped.
Shape reduced_shape(const Shape& shape, const std::vector<bool>& reduced, bool keepdim) {
  Shape out;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (!reduced[d]) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

/// Number of elements each output element reduces.
std::size_t reduced_count(const Shape& shape, const std::vector<bool>& reduced) {
  std::size_t n = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (reduced[d]) n *= shape[d];
  }
  return n;
}

/// out(o, i) += sum_k f(in(o, k, i)) for `in` seen as (outer, n, inner).
template <class In, class F>
void sum_over_axis(const In* in, double* out, const AxisView& v, F f) {
  if (v.inner == 1 && v.outer == 1) {  // one long row: split it over the threads
    constexpr std::int64_t kBlock = 4096;
    const auto blocks = static_cast<std::int64_t>((v.n + kBlock - 1) / kBlock);
    const auto n = static_cast<std::int64_t>(v.n);
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static) if (v.n >= 4 * kernels::kParallelWork)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t end = std::min(n, (b + 1) * kBlock);
      double part = 0;
#pragma omp simd reduction(+ : part)
      for (std::int64_t k = b * kBlock; k < end; ++k) part += static_cast<double>(f(in[k]));
      total += part;
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

/// A tensor's axes merged into runs of adjacent axes that are all reduced or all kept: a run is
/// contiguous in memory, so a reduction or a broadcast handles it as one axis.
struct Run {
  std::size_t size;
  bool reduced;
};

std::vector<Run> runs_of(const Shape& shape, const std::vector<bool>& reduced) {
  std::vector<Run> runs;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (!runs.empty() && runs.back().reduced == reduced[d]) runs.back().size *= shape[d];
    else runs.push_back({shape[d], reduced[d]});
  }
  if (runs.empty()) runs.push_back({1, false});  // a 0-d tensor
  return runs;
}

/// sum f(x) over the reduced runs, in double, laid out as the reduced shape. The last reduced
/// run goes first, each pass shrinking the data.
template <class F>
std::vector<double> sum_reduced(const Array& x, std::vector<Run> runs, F f) {
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
    if (from_input) sum_over_axis(x.data(), next.data(), v, f);
    else sum_over_axis(current.data(), next.data(), v, [](double value) { return value; });
    current.swap(next);
    from_input = false;
    runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(r));
  }
  if (from_input) {  // nothing reduced
    current.resize(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) current[i] = f(x.data()[i]);
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

/// `values * scale` as a float array of the given shape.
Array to_array(const std::vector<double>& values, const Shape& shape, double scale = 1.0) {
  Array out = Array::from_shape(shape);
  for (std::size_t i = 0; i < values.size(); ++i) out.data()[i] = static_cast<float>(values[i] * scale);
  return out;
}

/// scale * the gradient of a reduction's output, broadcast back over the reduced runs to the
/// input's shape: the adjoint of summing.
Array broadcast_back(const Array& grad, const std::vector<Run>& runs, const Shape& shape, float scale) {
  Array out = Array::from_shape(shape);
  // `in` is only read through f's first argument, which is ignored: pass the output itself.
  broadcast_apply(runs, out.data(), grad.data(), out.data(), [scale](float, float g) { return g * scale; });
  return out;
}

constexpr auto identity = [](float value) { return value; };

}  // namespace

// --- sum, mean -----------------------------------------------------------------------------------

Tensor sum(const Tensor& x) { return sum(x, {}); }

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Shape shape = x.shape();
  const std::vector<bool> reduced = reduced_axes("sum", axes, shape.size());
  const std::vector<Run> runs = runs_of(shape, reduced);
  Array out = to_array(sum_reduced(x.value(), runs, identity), reduced_shape(shape, reduced, keepdim));
  return record("sum", std::move(out), {x}, [shape, runs](BackwardContext& ctx) {
    ctx.accumulate(0, broadcast_back(ctx.grad_output(), runs, shape, 1.f));
  });
}

Tensor mean(const Tensor& x) { return mean(x, {}); }

Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Shape shape = x.shape();
  const std::vector<bool> reduced = reduced_axes("mean", axes, shape.size());
  const std::vector<Run> runs = runs_of(shape, reduced);
  const std::size_t n = reduced_count(shape, reduced);  // 0: the mean of nothing is NaN, as PyTorch
  const double inv_n = n > 0 ? 1.0 / static_cast<double>(n) : std::nan("");
  Array out = to_array(sum_reduced(x.value(), runs, identity), reduced_shape(shape, reduced, keepdim), inv_n);
  return record("mean", std::move(out), {x}, [shape, runs, inv_n](BackwardContext& ctx) {
    ctx.accumulate(0, broadcast_back(ctx.grad_output(), runs, shape, static_cast<float>(inv_n)));
  });
}

// --- var -----------------------------------------------------------------------------------------

Tensor var(const Tensor& x, const std::vector<std::int64_t>& axes, std::int64_t correction, bool keepdim) {
  const Shape shape = x.shape();
  const std::vector<bool> reduced = reduced_axes("var", axes, shape.size());
  const std::vector<Run> runs = runs_of(shape, reduced);
  const auto n = static_cast<std::int64_t>(reduced_count(shape, reduced));
  if (n - correction <= 0) {
    throw Error(fmt::format("var: the variance of {} element(s) with correction {} divides by n - correction = {}: "
                            "expected a positive divisor (tensor {}, axes [{}])",
                            n, correction, n - correction, shape_str(shape), fmt::join(axes, ",")));
  }
  const double inv_n = 1.0 / static_cast<double>(n);
  const double inv_dof = 1.0 / static_cast<double>(n - correction);

  // Two passes: the mean, then the sum of squared deviations from it.
  const Array& xv = x.value();
  auto mean = std::make_shared<std::vector<float>>();  // (reduced shape)
  for (double m : sum_reduced(xv, runs, identity)) mean->push_back(static_cast<float>(m * inv_n));
  Array centered = Array::from_shape(shape);
  broadcast_apply(runs, xv.data(), mean->data(), centered.data(), [](float a, float m) { return a - m; });
  Array out = to_array(sum_reduced(centered, runs, [](float d) { return d * d; }),
                       reduced_shape(shape, reduced, keepdim), inv_dof);

  // d var / dx = 2 (x - mean) / (n - correction); the mean's own dependence on x cancels.
  auto x_saved = x.saved();
  return record("var", std::move(out), {x}, [x_saved, mean, shape, runs, inv_dof](BackwardContext& ctx) {
    const float scale = static_cast<float>(2 * inv_dof);
    const float* g = ctx.grad_output().data();
    Array dx = Array::from_shape(shape);
    // dx = g * (x - mean) * scale, with g and the mean broadcast alike: first dx = x - mean.
    broadcast_apply(runs, x_saved->data(), mean->data(), dx.data(), [](float a, float m) { return a - m; });
    broadcast_apply(runs, dx.data(), g, dx.data(), [scale](float d, float gv) { return d * gv * scale; });
    ctx.accumulate(0, std::move(dx));
  });
}

// --- max, argmax ---------------------------------------------------------------------------------

namespace {

/// Whether `candidate` replaces `best` as the maximum: strictly larger (so the first of equal
/// values stays), or the first NaN (NaN propagates, as in PyTorch).
inline bool beats(float candidate, float best) {
  return candidate > best || (candidate != candidate && best == best);
}

/// values(o, i) = max_k x(o, k, i) and indices(o, i) its first k; v.n must be positive.
void max_over_axis(const float* x, float* values, std::int64_t* indices, const AxisView& v) {
  if (v.inner == 1) {
    // Per row: the largest value in one vectorized pass (counting NaNs alongside), then the
    // first position holding it (or holding a NaN).
    parallel_rows(v.outer, v.n, [&](std::size_t o) {
      const float* row = x + o * v.n;
      float best = row[0];
      int nans = 0;
#pragma omp simd reduction(max : best) reduction(+ : nans)
      for (std::size_t k = 0; k < v.n; ++k) {
        best = row[k] > best ? row[k] : best;
        nans += row[k] != row[k];
      }
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

struct MaxResult {
  Array values;
  std::shared_ptr<Indices> indices;  // shared with the backward closure
  AxisView view;
};

/// The maximum along `axis` (negative counts from the end; a 0-d tensor takes 0 or -1).
MaxResult max_along(const char* op, const Tensor& x, std::int64_t axis, bool keepdim) {
  const Shape shape = x.shape();
  const std::size_t rank = shape.size();
  const std::size_t a = normalize_axis(op, axis, std::max<std::size_t>(rank, 1));
  MaxResult result;
  result.view = rank == 0 ? AxisView{} : kernels::axis_view(shape, a);
  if (result.view.n == 0) {
    throw Error(fmt::format("{}: axis {} of tensor {} is empty: there is no largest element", op, axis,
                            shape_str(shape)));
  }
  Shape out_shape;
  for (std::size_t d = 0; d < rank; ++d) {
    if (d != a) out_shape.push_back(shape[d]);
    else if (keepdim) out_shape.push_back(1);
  }
  result.values = Array::from_shape(out_shape);
  result.indices = std::make_shared<Indices>(Indices::from_shape(out_shape));
  max_over_axis(x.value().data(), result.values.data(), result.indices->data(), result.view);
  return result;
}

}  // namespace

Tensor max(const Tensor& x) {
  if (x.numel() == 0) {
    throw Error(fmt::format("max: tensor {} is empty: there is no largest element (max(x, axis) reduces an axis)",
                            shape_str(x.shape())));
  }
  AxisView v{1, x.numel(), 1};
  Array value = Array::from_shape({});
  std::int64_t index = 0;
  max_over_axis(x.value().data(), value.data(), &index, v);
  const Shape shape = x.shape();
  // d max / dx = 1 at the first largest element, 0 elsewhere.
  return record("max", std::move(value), {x}, [shape, index](BackwardContext& ctx) {
    Array dx = Array::from_shape(shape);
    dx.fill(0.f);
    dx.data()[index] = ctx.grad_output().data()[0];
    ctx.accumulate(0, std::move(dx));
  });
}

std::tuple<Tensor, Indices> max(const Tensor& x, std::int64_t axis, bool keepdim) {
  MaxResult m = max_along("max", x, axis, keepdim);
  const Shape shape = x.shape();
  auto indices = m.indices;
  const AxisView v = m.view;
  // The gradient of each output goes to the element its index names.
  Tensor values = record("max", std::move(m.values), {x}, [shape, indices, v](BackwardContext& ctx) {
    Array dx = Array::from_shape(shape);
    dx.fill(0.f);
    const float* g = ctx.grad_output().data();
    const std::int64_t* index = indices->data();
    for (std::size_t o = 0; o < v.outer; ++o) {
      for (std::size_t i = 0; i < v.inner; ++i) {
        const std::size_t j = o * v.inner + i;
        dx.data()[(o * v.n + static_cast<std::size_t>(index[j])) * v.inner + i] = g[j];
      }
    }
    ctx.accumulate(0, std::move(dx));
  });
  return {values, *indices};
}

Indices argmax(const Tensor& x, std::int64_t axis, bool keepdim) {
  return std::move(*max_along("argmax", x, axis, keepdim).indices);
}

}  // namespace xgrad
