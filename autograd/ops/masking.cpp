// Selection by a boolean mask: masked_fill (attention masks) and where. Shapes are checked here;
// the row loops, which read the operands through broadcast strides, are in kernels/masking.
#include <xgrad/autograd/ops/masking.hpp>

#include <fmt/format.h>

#include <xgrad/autograd/broadcast.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/masking.hpp>

namespace xgrad {

namespace {

Shape shape_of_mask(const Mask& mask) { return Shape(mask.shape().begin(), mask.shape().end()); }

/// grad where keep == (mask value), else 0, over the gradient's shape; the mask broadcasts.
Array select_grad(const Array& grad, const Mask& mask, bool keep) {
  Array out = Array::from_shape(shape_of(grad));
  kernels::select_grad(grad.data(), mask.data(), shape_of_mask(mask), keep, shape_of(grad), out.data());
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
  kernels::masked_fill(x.value().data(), mask.data(), mask_shape, value, x_shape, out.data());

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
  kernels::where(condition.data(), cond_shape, a.value().data(), a_shape, b.value().data(), b_shape, out_shape,
                 out.data());

  auto saved_condition = std::make_shared<const Mask>(condition);
  return record("where", std::move(out), {a, b}, [saved_condition, a_shape, b_shape](BackwardContext& ctx) {
    const Array& g = ctx.grad_output();
    if (ctx.needs_grad(0)) ctx.accumulate(0, sum_to_shape(select_grad(g, *saved_condition, true), a_shape));
    if (ctx.needs_grad(1)) ctx.accumulate(1, sum_to_shape(select_grad(g, *saved_condition, false), b_shape));
  });
}

}  // namespace xgrad
