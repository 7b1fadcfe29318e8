#include <xgrad/nn/positional.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/ops/shape_ops.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/rotary.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

Array sinusoidal_table(std::size_t max_len, std::size_t d_model) {
  Array pe = Array::from_shape({max_len, d_model});
  pe.fill(0.f);
  const float rate = static_cast<float>(-std::log(10000.0) / static_cast<double>(d_model));
  for (std::size_t i = 0; 2 * i < d_model; ++i) {
    const float div = std::exp(static_cast<float>(2 * i) * rate);  // 10000^(-2i/D)
    for (std::size_t pos = 0; pos < max_len; ++pos) {
      const float angle = static_cast<float>(pos) * div;
      pe(pos, 2 * i) = std::sin(angle);
      if (2 * i + 1 < d_model) pe(pos, 2 * i + 1) = std::cos(angle);
    }
  }
  return pe;
}

namespace {
/// Checks that x is (B, T, D) and positions offset .. offset + T fit in a table of max_len rows.
void check_positions(const char* module, const Tensor& x, std::size_t d_model, std::size_t offset, std::size_t max_len) {
  const Shape shape = x.shape();
  if (shape.size() != 3 || shape[2] != d_model) {
    throw Error(fmt::format("{}: expected input (B, T, {}), got {}", module, d_model, shape_str(shape)));
  }
  if (offset + shape[1] > max_len) {
    throw Error(fmt::format("{}: positions {} to {} exceed max_len {}", module, offset, offset + shape[1] - 1, max_len));
  }
}
}  // namespace

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(std::size_t d_model, std::size_t max_len)
    : Module("SinusoidalPositionalEncoding"), max_len_(max_len) {
  pe_ = register_buffer("pe", Tensor(sinusoidal_table(max_len, d_model)), /*persistent=*/false);
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x, std::size_t offset) const {
  check_positions("SinusoidalPositionalEncoding", x, pe_.size(1), offset, max_len_);
  return run_hooks(x + narrow(pe_, 0, static_cast<std::int64_t>(offset), static_cast<std::int64_t>(x.size(1))));
}

LearnedPositionalEmbedding::LearnedPositionalEmbedding(std::size_t max_len, std::size_t d_model, Generator& generator)
    : Module("LearnedPositionalEmbedding"), max_len_(max_len) {
  weight = register_parameter("weight", zeros({max_len, d_model}));
  init::normal_(weight, 0.0, 1.0, generator);
}

Tensor LearnedPositionalEmbedding::forward(const Tensor& x, std::size_t offset) const {
  check_positions("LearnedPositionalEmbedding", x, weight.size(1), offset, max_len_);
  return run_hooks(x + narrow(weight, 0, static_cast<std::int64_t>(offset), static_cast<std::int64_t>(x.size(1))));
}

// --- rotary --------------------------------------------------------------------------------------

RotaryEmbedding::RotaryEmbedding(std::size_t head_dim, std::size_t max_len, float base)
    : Module("RotaryEmbedding"), head_dim_(head_dim), max_len_(max_len) {
  if (head_dim == 0 || head_dim % 2 != 0) {
    throw Error(fmt::format("RotaryEmbedding: head_dim must be even and positive, got {}", head_dim));
  }
  const std::size_t half = head_dim / 2;
  Array cos = Array::from_shape({max_len, half}), sin = Array::from_shape({max_len, half});
  for (std::size_t i = 0; i < half; ++i) {
    const double frequency = std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / head_dim);
    for (std::size_t pos = 0; pos < max_len; ++pos) {
      cos(pos, i) = static_cast<float>(std::cos(pos * frequency));
      sin(pos, i) = static_cast<float>(std::sin(pos * frequency));
    }
  }
  cos_ = std::make_shared<const Array>(std::move(cos));
  sin_ = std::make_shared<const Array>(std::move(sin));
}

Tensor RotaryEmbedding::forward(const Tensor& x, std::size_t num_heads, std::size_t offset) const {
  const Shape shape = x.shape();
  if (shape.size() != 3 || num_heads == 0 || shape[2] != num_heads * head_dim_) {
    throw Error(fmt::format("RotaryEmbedding: expected input (B, T, {} heads x {}), got {}", num_heads, head_dim_,
                            shape_str(shape)));
  }
  if (offset + shape[1] > max_len_) {
    throw Error(fmt::format("RotaryEmbedding: positions {} to {} exceed max_len {}", offset, offset + shape[1] - 1,
                            max_len_));
  }
  const std::size_t B = shape[0], T = shape[1], H = num_heads, dh = head_dim_;
  Array y = Array::from_shape(shape);
  kernels::rotary_forward(x.value().data(), y.data(), cos_->data(), sin_->data(), B, T, H, dh, offset);
  auto cos = cos_, sin = sin_;
  return run_hooks(record("rotary_embedding", std::move(y), {x}, [=](BackwardContext& ctx) {
    Array dx = Array::from_shape(shape);
    kernels::rotary_backward(ctx.grad_output().data(), dx.data(), cos->data(), sin->data(), B, T, H, dh, offset);
    ctx.accumulate(0, std::move(dx));
  }));
}

}  // namespace xgrad::nn
