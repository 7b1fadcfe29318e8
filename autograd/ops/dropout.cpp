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
// The mask is drawn in row-major order, one generator.uniform() per element (dropped when < p),
// so a seed reproduces it exactly.
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
  constexpr std::size_t kChunk = 1024;  // random draws made at once
  std::uint32_t bits[kChunk];
  for (std::size_t start = 0; start < n; start += kChunk) {
    const std::size_t len = std::min(kChunk, n - start);
    generator.uniform_bits(bits, len);
    kernels::dropout_forward(bits, drop_below, scale, x.value().data() + start, keep->data() + start,
                             out.data() + start, len);
  }

  return record("dropout", std::move(out), {x}, [keep, scale](BackwardContext& ctx) {
    const Array& g = ctx.grad_output();
    Array grad = Array::from_shape(shape_of(g));
    kernels::dropout_backward(keep->data(), g.data(), scale, grad.data(), g.size());
    ctx.accumulate(0, std::move(grad));
  });
}

}  // namespace xgrad
