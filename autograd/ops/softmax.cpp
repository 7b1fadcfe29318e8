// Softmax and log-softmax over one axis as ops: the axis checked here, the rows and column tiles
// in kernels/softmax.
#include <xgrad/autograd/ops/softmax.hpp>

#include <algorithm>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/axis_view.hpp>
#include <xgrad/kernels/softmax.hpp>

namespace xgrad {

namespace {

using kernels::AxisView;

/// The tensor seen around the softmax axis (negative counts from the end; a 0-d tensor takes 0
/// or -1 and is one slice of length 1).
AxisView view_around(const char* op, const Shape& shape, std::int64_t axis) {
  const std::size_t a = normalize_axis(op, axis, std::max<std::size_t>(shape.size(), 1));
  return shape.empty() ? AxisView{} : kernels::axis_view(shape, a);
}

/// softmax or log_softmax as one op: forward kernel, backward closure, record.
Tensor softmax_op(const char* op, const Tensor& x, std::int64_t axis, bool log) {
  const AxisView v = view_around(op, x.shape(), axis);
  auto out = std::make_shared<Array>(Array::from_shape(x.shape()));
  if (log) kernels::log_softmax_forward(x.value().data(), out->data(), v);
  else kernels::softmax_forward(x.value().data(), out->data(), v);

  return record(op, out, {x}, [out, v, log](BackwardContext& ctx) {
    Array dx = Array::from_shape(out->shape());
    if (log) kernels::log_softmax_backward(out->data(), ctx.grad_output().data(), dx.data(), v);
    else kernels::softmax_backward(out->data(), ctx.grad_output().data(), dx.data(), v);
    ctx.accumulate(0, std::move(dx));
  });
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t axis) { return softmax_op("softmax", x, axis, false); }

Tensor log_softmax(const Tensor& x, std::int64_t axis) { return softmax_op("log_softmax", x, axis, true); }

}  // namespace xgrad
