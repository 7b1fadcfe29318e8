// Multi-head scaled dot-product attention as one fused op: shapes and masks checked here, the
// dropout stream keyed here (its draws made per block by the kernels, so the result does not
// depend on the thread count), the arithmetic per (batch, head) in kernels/attention; for a long
// sequence the backward keeps only each row's softmax statistics and makes the weights again.
#include <xgrad/nn/functional.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/core/precision.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/attention.hpp>
#include <xgrad/kernels/dropout.hpp>

namespace xgrad::nn::functional {

Array causal_mask(std::size_t length, std::size_t past) {
  Array mask = Array::from_shape({length, past + length});  // (T, P + T)
  for (std::size_t i = 0; i < length; ++i) {
    for (std::size_t j = 0; j < past + length; ++j) {
      mask(i, j) = j > past + i ? -std::numeric_limits<float>::infinity() : 0.f;
    }
  }
  return mask;
}

namespace {

using Dims = kernels::AttentionShape;

Dims check_shapes(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t num_heads,
                  const AttentionOptions& options) {
  const char* op = "scaled_dot_product_attention";
  if (!q.defined() || !k.defined() || !v.defined()) throw Error(fmt::format("{}: q, k and v must be defined", op));
  const Shape qs = q.shape(), ks = k.shape(), vs = v.shape();
  if (qs.size() != 3 || ks.size() != 3 || vs.size() != 3) {
    throw Error(fmt::format("{}: q, k and v must be (B, T, H*d), got {}, {} and {}", op, shape_str(qs), shape_str(ks),
                            shape_str(vs)));
  }
  if (num_heads <= 0) throw Error(fmt::format("{}: num_heads must be positive, got {}", op, num_heads));
  const auto H = static_cast<std::size_t>(num_heads);
  if (qs[0] != ks[0] || ks[0] != vs[0] || ks[1] != vs[1] || qs[2] != ks[2]) {
    throw Error(fmt::format("{}: q {}, k {} and v {} disagree (expected q (B, T, E), k (B, S, E), v (B, S, Ev))", op,
                            shape_str(qs), shape_str(ks), shape_str(vs)));
  }
  if (qs[2] % H != 0 || vs[2] % H != 0) {
    throw Error(fmt::format("{}: embedding sizes {} and {} are not divisible by {} heads", op, qs[2], vs[2], H));
  }
  if (options.num_keys > ks[1]) {
    throw Error(fmt::format("{}: num_keys {} exceeds the {} keys that k {} holds", op, options.num_keys, ks[1],
                            shape_str(ks)));
  }
  const std::size_t S = options.num_keys > 0 ? options.num_keys : ks[1];
  Dims d{qs[0], qs[1], S, H, qs[2] / H, vs[2] / H, ks[1]};
  if (options.attn_mask) {
    const Shape ms = shape_of(*options.attn_mask);
    const bool per_all = ms == Shape{d.T, d.S}, per_head = ms == Shape{d.B * d.H, d.T, d.S};
    if (!per_all && !per_head) {
      throw Error(fmt::format("{}: attn_mask has shape {}, expected [{},{}] or [{},{},{}]", op, shape_str(ms), d.T, d.S,
                              d.B * d.H, d.T, d.S));
    }
  }
  if (options.key_padding_mask) {
    const auto& m = *options.key_padding_mask;
    if (m.dimension() != 2 || m.shape()[0] != d.B || m.shape()[1] != d.S) {
      throw Error(fmt::format("{}: key_padding_mask has shape {}, expected [{},{}] (B, S)", op,
                              shape_str(Shape(m.shape().begin(), m.shape().end())), d.B, d.S));
    }
  }
  if (!(options.dropout_p >= 0.f && options.dropout_p <= 1.f)) {
    throw Error(fmt::format("{}: dropout_p must be in [0, 1], got {}", op, options.dropout_p));
  }
  return d;
}

/// The kernels' view of the masks: attn (T, S) or (B*H, T, S), key_padding (B, S), either null.
kernels::AttentionMasks masks_of(const Array* attn, const Mask* key_padding) {
  kernels::AttentionMasks masks;
  if (attn) {
    masks.attn = attn->data();
    masks.attn_per_head = attn->dimension() == 3;
  }
  if (key_padding) masks.key_padding = key_padding->data();
  return masks;
}

}  // namespace

AttentionResult scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                             std::int64_t num_heads, const AttentionOptions& options) {
  // Under bf16 autocast the products take bf16 inputs (fp32 sums; softmax in fp32).
  const bool bf16 = autocast_precision() == Precision::bf16;
  const Tensor q = bf16 ? round_bf16(q_in) : q_in, k = bf16 ? round_bf16(k_in) : k_in, v = bf16 ? round_bf16(v_in) : v_in;
  const Dims d = check_shapes(q, k, v, num_heads, options);
  const float scale = 1.f / std::sqrt(static_cast<float>(d.dk));
  const std::size_t block = d.T * d.S;
  const bool use_dropout = options.training && options.dropout_p > 0.f;
  // A backward keeps the weights (B, H, T, S) when they are no larger than the keys and values
  // they weigh (S <= dk + dv: a short sequence), and otherwise only each row's softmax statistics
  // (B, H, T), making the weights again block by block. Dropout's multipliers come from a Philox
  // stream and are drawn again. (record keeps the closure under the same condition.)
  const bool for_backward = is_grad_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  const bool keep_weights = for_backward && d.S <= d.dk + d.dv;

  std::optional<kernels::AttentionDropout> dropout;
  if (use_dropout) {
    Generator& gen = options.generator ? *options.generator : default_generator();
    const float p = options.dropout_p;
    // dropped: uniform() < p
    dropout = kernels::AttentionDropout{gen.philox_stream(), Generator::uniform_threshold(p), p < 1.f ? 1.f / (1.f - p) : 0.f};
  }
  const kernels::AttentionMasks masks =
      masks_of(options.attn_mask ? &*options.attn_mask : nullptr, options.key_padding_mask ? &*options.key_padding_mask : nullptr);

  std::shared_ptr<Array> probs;  // (B, H, T, S): for the backward, or to return the weights
  if (options.need_weights || keep_weights) probs = std::make_shared<Array>(Array::from_shape({d.B, d.H, d.T, d.S}));
  const bool recompute = for_backward && !keep_weights;
  auto stats = recompute ? std::make_shared<std::vector<kernels::SoftmaxRowStats>>(d.B * d.H * d.T) : nullptr;
  Array out = Array::from_shape({d.B, d.T, d.v_ld()});
  kernels::attention_forward(d, scale, q.value().data(), k.value().data(), v.value().data(), masks,
                             dropout ? &*dropout : nullptr, stats ? stats->data() : nullptr,
                             probs ? probs->data() : nullptr, out.data());

  AttentionResult result;
  if (options.need_weights) {
    Array mean = Array::from_shape({d.B, d.T, d.S});
    mean.fill(0.f);
    for (std::size_t b = 0; b < d.B; ++b) {
      for (std::size_t h = 0; h < d.H; ++h) {
        const float* P = probs->data() + (b * d.H + h) * block;
        float* M = mean.data() + b * block;
        for (std::size_t i = 0; i < block; ++i) M[i] += P[i] / static_cast<float>(d.H);
      }
    }
    result.weights = Tensor(std::move(mean));
  }
  if (!keep_weights) probs.reset();
  // Making the weights again needs the masks too.
  auto attn_mask = recompute && options.attn_mask ? std::make_shared<Array>(*options.attn_mask) : nullptr;
  auto key_padding = recompute && options.key_padding_mask ? std::make_shared<Mask>(*options.key_padding_mask) : nullptr;
  auto q_saved = q.saved(), k_saved = k.saved(), v_saved = v.saved();
  result.output = record("scaled_dot_product_attention", std::move(out), {q, k, v},
                         [d, scale, stats, probs, dropout, attn_mask, key_padding, q_saved, k_saved, v_saved](BackwardContext& ctx) {
    // Straight into the gradients, in the order the kernel puts them (q, k, v the same tensor
    // share one array: the first put writes it).
    kernels::GradOut dq = ctx.grad_out(0), dk = ctx.grad_out(1), dv = ctx.grad_out(2);
    if (d.S < d.S_stored) {  // keys past num_keys get no gradient from the kernel: zeros
      const std::pair<kernels::GradOut*, std::size_t> unused_keys[] = {{&dk, d.q_ld()}, {&dv, d.v_ld()}};
      for (const auto& [grad, width] : unused_keys) {
        if (grad->data && !grad->add) {
          std::fill_n(grad->data, d.B * d.S_stored * width, 0.f);
          grad->add = true;
        }
      }
    }
    kernels::attention_backward(d, scale, q_saved->data(), k_saved->data(), v_saved->data(),
                                masks_of(attn_mask.get(), key_padding.get()),
                                dropout ? &*dropout : nullptr, stats ? stats->data() : nullptr,
                                probs ? probs->data() : nullptr,
                                ctx.grad_output().data(), dq, dk, dv);
  });
  return result;
}

}  // namespace xgrad::nn::functional
