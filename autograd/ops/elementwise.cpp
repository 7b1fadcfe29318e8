// Elementwise ops: forward, then the backward closure right under it, then the tape record.
#include <xgrad/autograd/ops/elementwise.hpp>

#include <cmath>

#include <fmt/format.h>
#include <xtensor/xmath.hpp>

#include <xgrad/autograd/broadcast.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/bf16.hpp>
#include <xgrad/kernels/elementwise.hpp>

namespace xgrad {

namespace {
/// Checks that a and b broadcast together; returns the result's shape.
Shape checked_broadcast(const char* op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw Error(fmt::format("{}: an input tensor is undefined", op));
  return broadcast_shapes(op, a.shape(), b.shape());
}
}  // namespace

// --- add, sub ------------------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  checked_broadcast("add", a, b);
  Shape a_shape = a.shape(), b_shape = b.shape();
  Array out;
  if (a_shape == b_shape) {  // the residual connections: one loop over the threads
    out = Array::from_shape(a_shape);
    kernels::add(a.value().data(), b.value().data(), out.data(), out.size());
  } else {
    out = a.value() + b.value();
  }
  return record("add", std::move(out), {a, b}, [a_shape, b_shape](BackwardContext& ctx) {
    // The last input that needs it takes the output gradient itself.
    if (ctx.needs_grad(0)) {
      ctx.accumulate(0, sum_to_shape(ctx.needs_grad(1) ? ctx.grad_output() : ctx.take_grad_output(), a_shape));
    }
    if (ctx.needs_grad(1)) ctx.accumulate(1, sum_to_shape(ctx.take_grad_output(), b_shape));
  });
}

Tensor add(const Tensor& a, float b) {
  Array out = a.value() + b;
  return record("add", std::move(out), {a}, [](BackwardContext& ctx) { ctx.accumulate(0, ctx.take_grad_output()); });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  checked_broadcast("sub", a, b);
  Array out = a.value() - b.value();
  Shape a_shape = a.shape(), b_shape = b.shape();
  return record("sub", std::move(out), {a, b}, [a_shape, b_shape](BackwardContext& ctx) {
    if (ctx.needs_grad(0)) ctx.accumulate(0, sum_to_shape(ctx.grad_output(), a_shape));
    if (ctx.needs_grad(1)) ctx.accumulate(1, sum_to_shape(-ctx.grad_output(), b_shape));
  });
}

Tensor sub(const Tensor& a, float b) { return add(a, -b); }

Tensor sub(float a, const Tensor& b) {
  Array out = a - b.value();
  return record("sub", std::move(out), {b}, [](BackwardContext& ctx) { ctx.accumulate(0, -ctx.grad_output()); });
}

// --- mul, div ------------------------------------------------------------------------------------

Tensor mul(const Tensor& a, const Tensor& b) {
  checked_broadcast("mul", a, b);
  Array out = a.value() * b.value();
  auto a_saved = a.saved(), b_saved = b.saved();
  return record("mul", std::move(out), {a, b}, [a_saved, b_saved](BackwardContext& ctx) {
    const Array& g = ctx.grad_output();
    if (ctx.needs_grad(0)) ctx.accumulate(0, sum_to_shape(g * *b_saved, shape_of(*a_saved)));
    if (ctx.needs_grad(1)) ctx.accumulate(1, sum_to_shape(g * *a_saved, shape_of(*b_saved)));
  });
}

Tensor mul(const Tensor& a, float b) {
  Array out = a.value() * b;
  return record("mul", std::move(out), {a}, [b](BackwardContext& ctx) { ctx.accumulate(0, ctx.grad_output() * b); });
}

Tensor div(const Tensor& a, const Tensor& b) {
  checked_broadcast("div", a, b);
  Array out = a.value() / b.value();
  auto a_saved = a.saved(), b_saved = b.saved();
  return record("div", std::move(out), {a, b}, [a_saved, b_saved](BackwardContext& ctx) {
    const Array& g = ctx.grad_output();
    const Array& bv = *b_saved;
    if (ctx.needs_grad(0)) ctx.accumulate(0, sum_to_shape(g / bv, shape_of(*a_saved)));
    if (ctx.needs_grad(1)) ctx.accumulate(1, sum_to_shape(-g * *a_saved / (bv * bv), shape_of(bv)));
  });
}

Tensor div(const Tensor& a, float b) { return mul(a, 1.f / b); }

Tensor div(float a, const Tensor& b) {
  Array out = a / b.value();
  auto b_saved = b.saved();
  return record("div", std::move(out), {b}, [a, b_saved](BackwardContext& ctx) {
    const Array& bv = *b_saved;
    ctx.accumulate(0, -a * ctx.grad_output() / (bv * bv));
  });
}

Tensor neg(const Tensor& x) {
  Array out = -x.value();
  return record("neg", std::move(out), {x}, [](BackwardContext& ctx) { ctx.accumulate(0, -ctx.grad_output()); });
}

// --- pow, exp, log, sqrt, abs --------------------------------------------------------------------

Tensor pow(const Tensor& x, float exponent) {
  Array out = xt::pow(x.value(), exponent);
  auto x_saved = x.saved();
  return record("pow", std::move(out), {x}, [x_saved, exponent](BackwardContext& ctx) {
    ctx.accumulate(0, ctx.grad_output() * exponent * xt::pow(*x_saved, exponent - 1.f));
  });
}

Tensor pow(const Tensor& a, const Tensor& b) {
  checked_broadcast("pow", a, b);
  auto out = std::make_shared<Array>(xt::pow(a.value(), b.value()));
  auto a_saved = a.saved(), b_saved = b.saved();
  return record("pow", out, {a, b}, [a_saved, b_saved, out](BackwardContext& ctx) {
    const Array& g = ctx.grad_output();
    const Array& av = *a_saved;
    const Array& bv = *b_saved;
    if (ctx.needs_grad(0)) ctx.accumulate(0, sum_to_shape(g * bv * xt::pow(av, bv - 1.f), shape_of(av)));
    if (ctx.needs_grad(1)) ctx.accumulate(1, sum_to_shape(g * *out * xt::log(av), shape_of(bv)));
  });
}

Tensor exp(const Tensor& x) {
  auto out = std::make_shared<Array>(xt::exp(x.value()));
  return record("exp", out, {x}, [out](BackwardContext& ctx) { ctx.accumulate(0, ctx.grad_output() * *out); });
}

Tensor log(const Tensor& x) {
  Array out = xt::log(x.value());
  auto x_saved = x.saved();
  return record("log", std::move(out), {x},
                [x_saved](BackwardContext& ctx) { ctx.accumulate(0, ctx.grad_output() / *x_saved); });
}

Tensor sqrt(const Tensor& x) {
  auto out = std::make_shared<Array>(xt::sqrt(x.value()));
  return record("sqrt", out, {x},
                [out](BackwardContext& ctx) { ctx.accumulate(0, ctx.grad_output() / (2.f * *out)); });
}

Tensor abs(const Tensor& x) {
  Array out = xt::abs(x.value());
  auto x_saved = x.saved();
  return record("abs", std::move(out), {x},
                [x_saved](BackwardContext& ctx) { ctx.accumulate(0, ctx.grad_output() * xt::sign(*x_saved)); });
}

// --- activations ---------------------------------------------------------------------------------

Tensor tanh(const Tensor& x) {
  auto out = std::make_shared<Array>(xt::tanh(x.value()));
  return record("tanh", out, {x}, [out](BackwardContext& ctx) {
    const Array& y = *out;
    ctx.accumulate(0, ctx.grad_output() * (1.f - y * y));
  });
}

Tensor sigmoid(const Tensor& x) {
  auto out = std::make_shared<Array>(1.f / (1.f + xt::exp(-x.value())));
  return record("sigmoid", out, {x}, [out](BackwardContext& ctx) {
    const Array& s = *out;
    ctx.accumulate(0, ctx.grad_output() * s * (1.f - s));
  });
}

// y = max(x, 0) (0 for NaN, as the vectorized maximum gives);  dy/dx = 1 where y > 0, else 0.
Tensor relu(const Tensor& x) {
  auto out = std::make_shared<Array>(Array::from_shape(x.shape()));
  kernels::relu_forward(x.value().data(), out->data(), out->size());
  return record("relu", out, {x}, [out](BackwardContext& ctx) {
    Array grad = Array::from_shape(shape_of(*out));
    kernels::relu_backward(out->data(), ctx.grad_output().data(), grad.data(), grad.size());
    ctx.accumulate(0, std::move(grad));
  });
}

Tensor round_bf16(const Tensor& x) {
  Array out = Array::from_shape(x.shape());
  kernels::round_bf16(x.value().data(), out.size(), out.data());
  return record("round_bf16", std::move(out), {x}, [](BackwardContext& ctx) { ctx.accumulate(0, ctx.grad_output()); });
}

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752f;     // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143268f;   // 1/sqrt(2 pi)
constexpr float kSqrt2OverPi = 0.79788456080286536f;  // sqrt(2/pi)
constexpr float kGeluCubic = 0.044715f;
}  // namespace

Tensor gelu(const Tensor& x, const std::string& approximate) {
  auto x_saved = x.saved();
  const Array& v = *x_saved;
  if (approximate == "none") {
    // y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;  dy/dx = Phi(x) + x phi(x), phi the normal pdf.
    Array out = 0.5f * v * (1.f + xt::erf(v * kInvSqrt2));
    return record("gelu", std::move(out), {x}, [x_saved](BackwardContext& ctx) {
      const Array& v = *x_saved;
      Array cdf = 0.5f * (1.f + xt::erf(v * kInvSqrt2));
      ctx.accumulate(0, ctx.grad_output() * (cdf + v * kInvSqrt2Pi * xt::exp(-0.5f * v * v)));
    });
  }
  if (approximate == "tanh") {
    // u = sqrt(2/pi) (x + c x^3), y = x (1 + tanh u) / 2;
    // dy/dx = (1 + tanh u) / 2 + x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 c x^2) / 2.
    Array out = 0.5f * v * (1.f + xt::tanh(kSqrt2OverPi * (v + kGeluCubic * v * v * v)));
    return record("gelu", std::move(out), {x}, [x_saved](BackwardContext& ctx) {
      const Array& v = *x_saved;
      Array t = xt::tanh(kSqrt2OverPi * (v + kGeluCubic * v * v * v));
      Array d = 0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * kSqrt2OverPi * (1.f + 3.f * kGeluCubic * v * v);
      ctx.accumulate(0, ctx.grad_output() * d);
    });
  }
  throw Error(fmt::format("gelu: approximate must be \"none\" or \"tanh\", got \"{}\"", approximate));
}

// --- operators -----------------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator+(const Tensor& a, float b) { return add(a, b); }
Tensor operator+(float a, const Tensor& b) { return add(b, a); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator-(const Tensor& a, float b) { return sub(a, b); }
Tensor operator-(float a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator*(const Tensor& a, float b) { return mul(a, b); }
Tensor operator*(float a, const Tensor& b) { return mul(b, a); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator/(const Tensor& a, float b) { return div(a, b); }
Tensor operator/(float a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace xgrad
