// Dropout with inverted scaling: a Bernoulli keep-mask drawn from a Generator, saved for backward.
#include <xgrad/autograd/ops/dropout.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/dropout.hpp>

namespace xgrad {

// y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) per element.   dy/dx = keep / (1 - p).
// Element i is dropped when draw i of a Philox stream, as a uniform in [0, 1), is below p. The
// stream's key is one draw of `generator`, so a seed reproduces the mask exactly, and the mask is
// the same whatever the thread count.
Tensor dropout(const Tensor& x, float p, bool training, Generator& generator) {
  if (!x.defined()) throw Error("dropout: the input tensor is undefined");
  if (!(p >= 0.f && p <= 1.f)) {
    throw Error(fmt::format("dropout: probability has to be between 0 and 1, but got {}", p));
  }
  if (!training || p == 0.f) return x;

  const Shape shape = x.shape();
  const std::size_t n = x.numel();
  if (p == 1.f) {  // everything dropped: zeros, and a zero gradient
    Array out = Array::from_shape(shape);
    out.fill(0.f);
    return record("dropout", std::move(out), {x}, [shape](BackwardContext& ctx) {
      Array zero = Array::from_shape(shape);
      zero.fill(0.f);
      ctx.accumulate(0, std::move(zero));
    });
  }

  auto keep = std::make_shared<Mask>(Mask::from_shape(shape));
  Array out = Array::from_shape(shape);
  const float scale = 1.f / (1.f - p);
  const std::uint32_t drop_below = Generator::uniform_threshold(p);  // dropped: uniform() < p
  kernels::dropout_forward(generator.philox_stream(), drop_below, scale, x.value().data(), keep->data(), out.data(), n);

  return record("dropout", std::move(out), {x}, [keep, scale](BackwardContext& ctx) {
    const Array& g = ctx.grad_output();
    Array grad = Array::from_shape(shape_of(g));
    kernels::dropout_backward(keep->data(), g.data(), scale, grad.data(), g.size());
    ctx.accumulate(0, std::move(grad));
  });
}

}  // namespace xgrad
