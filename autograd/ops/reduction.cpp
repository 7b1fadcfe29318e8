// Reductions: sum, mean and var over any set of axes, max and argmax along one axis. The axes and
// shapes are worked out here; the sums (in double), their broadcasts back and the max scans are
// in kernels/reduce.
#include <xgrad/autograd/ops/reduction.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/axis_view.hpp>
#include <xgrad/kernels/reduce.hpp>

namespace xgrad {

namespace {

using kernels::AxisView;
using kernels::Run;

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
  kernels::broadcast_scale(runs, grad.data(), scale, out.data());
  return out;
}

}  // namespace

// --- sum, mean -----------------------------------------------------------------------------------

Tensor sum(const Tensor& x) { return sum(x, {}); }

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Shape shape = x.shape();
  const std::vector<bool> reduced = reduced_axes("sum", axes, shape.size());
  const std::vector<Run> runs = kernels::runs_of(shape, reduced);
  Array out = to_array(kernels::reduce_sum(x.value().data(), runs), reduced_shape(shape, reduced, keepdim));
  return record("sum", std::move(out), {x}, [shape, runs](BackwardContext& ctx) {
    ctx.accumulate(0, broadcast_back(ctx.grad_output(), runs, shape, 1.f));
  });
}

Tensor mean(const Tensor& x) { return mean(x, {}); }

Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Shape shape = x.shape();
  const std::vector<bool> reduced = reduced_axes("mean", axes, shape.size());
  const std::vector<Run> runs = kernels::runs_of(shape, reduced);
  const std::size_t n = reduced_count(shape, reduced);  // 0: the mean of nothing is NaN, as PyTorch
  const double inv_n = n > 0 ? 1.0 / static_cast<double>(n) : std::nan("");
  Array out = to_array(kernels::reduce_sum(x.value().data(), runs), reduced_shape(shape, reduced, keepdim), inv_n);
  return record("mean", std::move(out), {x}, [shape, runs, inv_n](BackwardContext& ctx) {
    ctx.accumulate(0, broadcast_back(ctx.grad_output(), runs, shape, static_cast<float>(inv_n)));
  });
}

// --- var -----------------------------------------------------------------------------------------

Tensor var(const Tensor& x, const std::vector<std::int64_t>& axes, std::int64_t correction, bool keepdim) {
  const Shape shape = x.shape();
  const std::vector<bool> reduced = reduced_axes("var", axes, shape.size());
  const std::vector<Run> runs = kernels::runs_of(shape, reduced);
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
  for (double m : kernels::reduce_sum(xv.data(), runs)) mean->push_back(static_cast<float>(m * inv_n));
  Array centered = Array::from_shape(shape);
  kernels::broadcast_sub(runs, xv.data(), mean->data(), centered.data());
  Array out = to_array(kernels::reduce_sum_squares(centered.data(), runs), reduced_shape(shape, reduced, keepdim),
                       inv_dof);

  // d var / dx = 2 (x - mean) / (n - correction); the mean's own dependence on x cancels.
  auto x_saved = x.saved();
  return record("var", std::move(out), {x}, [x_saved, mean, shape, runs, inv_dof](BackwardContext& ctx) {
    const float scale = static_cast<float>(2 * inv_dof);
    const float* g = ctx.grad_output().data();
    Array dx = Array::from_shape(shape);
    // dx = g * (x - mean) * scale, with g and the mean broadcast alike: first dx = x - mean.
    kernels::broadcast_sub(runs, x_saved->data(), mean->data(), dx.data());
    kernels::broadcast_mul_scale(runs, dx.data(), g, scale, dx.data());
    ctx.accumulate(0, std::move(dx));
  });
}

// --- max, argmax ---------------------------------------------------------------------------------

namespace {

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
  kernels::max_along_axis(x.value().data(), result.values.data(), result.indices->data(), result.view);
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
  kernels::max_along_axis(x.value().data(), value.data(), &index, v);
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
