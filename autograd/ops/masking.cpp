// Selection by a boolean mask: masked_fill (attention masks) and where. Both read their operands
// through broadcast strides in row loops, so a (T, T) mask over (B, H, T, T) scores is never
// materialised.
#include <xgrad/autograd/ops/masking.hpp>

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include <xgrad/autograd/broadcast.hpp>
#include <xgrad/autograd/error.hpp>
#include <xgrad/autograd/tape.hpp>

namespace xgrad {

namespace {
/// The element strides with which an operand of shape `shape` is read when broadcast to `out`:
/// 0 on the axes that broadcasting prepends or stretches from 1. One per axis of `out`.
std::vector<std::size_t> broadcast_strides(const Shape& shape, const Shape& out) {
  std::vector<std::size_t> strides(out.size(), 0);
  std::size_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    const std::size_t axis = i + out.size() - shape.size();
    strides[axis] = shape[i] == 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

template <std::size_t K>
using Offsets = std::array<std::size_t, K>;

/// Walks `out` (row-major, contiguous) one last-axis row at a time. For each row calls
/// row(out_offset, base, step, n): operand k's elements for that row are at base[k] + j * step[k],
/// j < n (step is 1 or 0, a broadcast last axis).
template <std::size_t K, class Row>
void for_each_row(const Shape& out, const std::array<Shape, K>& operands, Row row) {
  const std::size_t total = numel_of(out);
  if (total == 0) return;
  const std::size_t rank = out.size();
  const std::size_t n = rank > 0 ? out.back() : 1;
  std::array<std::vector<std::size_t>, K> strides;
  Offsets<K> step{};
  for (std::size_t k = 0; k < K; ++k) {
    strides[k] = broadcast_strides(operands[k], out);
    step[k] = rank > 0 ? strides[k][rank - 1] : 0;
  }
  std::vector<std::size_t> index(rank, 0);  // the current row's index on the leading axes
  Offsets<K> base{};
  for (std::size_t offset = 0; offset < total; offset += n) {
    row(offset, base, step, n);
    for (std::size_t d = rank > 0 ? rank - 1 : 0; d-- > 0;) {  // odometer over axes rank-2 .. 0
      for (std::size_t k = 0; k < K; ++k) base[k] += strides[k][d];
      if (++index[d] < out[d]) break;
      for (std::size_t k = 0; k < K; ++k) base[k] -= strides[k][d] * out[d];
      index[d] = 0;
    }
  }
}

Shape shape_of_mask(const Mask& mask) { return Shape(mask.shape().begin(), mask.shape().end()); }

/// grad where keep == (mask value), else 0, over `shape` = the gradient's shape; the mask broadcasts.
Array select_grad(const Array& grad, const Mask& mask, bool keep) {
  Array out = Array::from_shape(shape_of(grad));
  const float* g = grad.data();
  const bool* m = mask.data();
  float* o = out.data();
  for_each_row<1>(shape_of(grad), {shape_of_mask(mask)}, [&](std::size_t offset, const Offsets<1>& base,
                                                               const Offsets<1>& step, std::size_t n) {
    const bool* mr = m + base[0];
    if (step[0] == 0) {  // exact zeros, also where the gradient is inf or NaN
      if (mr[0] == keep) std::copy(g + offset, g + offset + n, o + offset);
      else std::fill(o + offset, o + offset + n, 0.f);
    } else {
#pragma omp simd
      for (std::size_t j = 0; j < n; ++j) o[offset + j] = mr[j] == keep ? g[offset + j] : 0.f;
    }
  });
  return out;
}
}  // namespace

// y = value where mask, else x.   dy/dx = 0 where mask, else 1 (so a -inf fill gives a 0 gradient).
Tensor masked_fill(const Tensor& x, const Mask& mask, float value) {
  if (!x.defined()) throw Error("masked_fill: the input tensor is undefined");
  const Shape x_shape = x.shape();
  const Shape mask_shape = shape_of_mask(mask);
  if (broadcast_shapes("masked_fill", mask_shape, x_shape) != x_shape) {
    throw Error(fmt::format("masked_fill: a mask of shape {} would enlarge the input of shape {}: the mask must "
                            "broadcast to the input's shape",
                            shape_str(mask_shape), shape_str(x_shape)));
  }
  Array out = Array::from_shape(x_shape);
  const float* xv = x.value().data();
  const bool* m = mask.data();
  float* o = out.data();
  for_each_row<1>(x_shape, {mask_shape}, [&](std::size_t offset, const Offsets<1>& base, const Offsets<1>& step,
                                             std::size_t n) {
    const bool* mr = m + base[0];
    if (step[0] == 0) {
      if (mr[0]) std::fill(o + offset, o + offset + n, value);
      else std::copy(xv + offset, xv + offset + n, o + offset);
    } else {
#pragma omp simd
      for (std::size_t j = 0; j < n; ++j) o[offset + j] = mr[j] ? value : xv[offset + j];
    }
  });

  auto saved_mask = std::make_shared<const Mask>(mask);
  return record("masked_fill", std::move(out), {x}, [saved_mask](BackwardContext& ctx) {
    ctx.accumulate(0, select_grad(ctx.grad_output(), *saved_mask, /*keep=*/false));
  });
}

// y = a where condition, else b, all broadcast.   dy/da = [condition], dy/db = [not condition].
Tensor where(const Mask& condition, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw Error("where: an input tensor is undefined");
  const Shape cond_shape = shape_of_mask(condition);
  const Shape a_shape = a.shape(), b_shape = b.shape();
  Shape out_shape;
  try {
    out_shape = broadcast_shapes("where", broadcast_shapes("where", cond_shape, a_shape), b_shape);
  } catch (const Error&) {
    throw Error(fmt::format("where: condition {}, a {} and b {} cannot be broadcast together", shape_str(cond_shape),
                            shape_str(a_shape), shape_str(b_shape)));
  }
  Array out = Array::from_shape(out_shape);
  const bool* c = condition.data();
  const float* av = a.value().data();
  const float* bv = b.value().data();
  float* o = out.data();
  for_each_row<3>(out_shape, {cond_shape, a_shape, b_shape},
                  [&](std::size_t offset, const Offsets<3>& base, const Offsets<3>& step, std::size_t n) {
                    const bool* cr = c + base[0];
                    const float* ar = av + base[1];
                    const float* br = bv + base[2];
                    for (std::size_t j = 0; j < n; ++j) {
                      o[offset + j] = cr[j * step[0]] ? ar[j * step[1]] : br[j * step[2]];
                    }
                  });

  auto saved_condition = std::make_shared<const Mask>(condition);
  return record("where", std::move(out), {a, b}, [saved_condition, a_shape, b_shape](BackwardContext& ctx) {
    const Array& g = ctx.grad_output();
    if (ctx.needs_grad(0)) ctx.accumulate(0, sum_to_shape(select_grad(g, *saved_condition, true), a_shape));
    if (ctx.needs_grad(1)) ctx.accumulate(1, sum_to_shape(select_grad(g, *saved_condition, false), b_shape));
  });
}

}  // namespace xgrad
