#include <xgrad/nn/multihead_attention.hpp>

#include <limits>

#include <fmt/format.h>

#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/ops/shape_ops.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/precision.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

AttnMask::AttnMask(const Mask& blocked) {
  Array a = Array::from_shape(blocked.shape());
  for (std::size_t i = 0; i < blocked.size(); ++i) {
    a.data()[i] = blocked.data()[i] ? -std::numeric_limits<float>::infinity() : 0.f;
  }
  additive = std::move(a);
}

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& options, Generator& generator)
    : Module("MultiheadAttention"), options_(options), generator_(&generator) {
  const std::size_t D = options.embed_dim, H = options.num_heads;
  if (D == 0 || H == 0 || D % H != 0) {
    throw Error(fmt::format("MultiheadAttention: embed_dim {} must be a positive multiple of num_heads {}", D, H));
  }
  if (!(options.dropout >= 0.f && options.dropout <= 1.f)) {
    throw Error(fmt::format("MultiheadAttention: dropout must be in [0, 1], got {}", options.dropout));
  }
  in_proj_weight = register_parameter("in_proj_weight", quantizable_weight(3 * D, D, int8_in_proj_, [&] {
                                         Tensor w = zeros({3 * D, D});
                                         init::xavier_uniform_(w, 1.0, generator);
                                         return w;
                                       }));
  if (options.bias) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * D}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(D, D, options.bias, generator));
  if (options.bias) init::zeros_(out_proj->bias);
  if (options.rotary) {
    rotary_ = register_module("rotary", std::make_shared<RotaryEmbedding>(D / H, options.rotary_max_len,
                                                                          options.rotary_base));
  }
}

Tensor MultiheadAttention::project_rows(const Tensor& x, std::size_t start, std::size_t count) const {
  if (int8_in_proj_ && !is_grad_enabled()) {
    return functional::quantized_linear(x, int8_in_proj_->get(), in_proj_bias, start, count);
  }
  if (int8_in_proj_) int8_in_proj_->require_fp32("MultiheadAttention");
  return functional::linear_rows(x, in_proj_weight, in_proj_bias, start, count);
}

Tensor MultiheadAttention::project(const Tensor& x, std::size_t which) const {
  const std::size_t D = options_.embed_dim;
  return project_rows(x, which * D, D);  // W_q, W_k or W_v: (D, D)
}

std::vector<Tensor> MultiheadAttention::project_self(const Tensor& x) const {
  const std::size_t D = options_.embed_dim;
  return split(project_rows(x, 0, 3 * D), static_cast<std::int64_t>(D), -1);  // (..., 3D) -> q, k, v
}

void MultiheadAttention::quantize_int8() {
  if (!int8_in_proj_) int8_in_proj_ = std::make_shared<Int8Weight>(in_proj_weight);
  out_proj->quantize_int8();
}

Tensor MultiheadAttention::project_query(const Tensor& query) const { return project(query, 0); }
Tensor MultiheadAttention::project_key(const Tensor& key) const { return project(key, 1); }
Tensor MultiheadAttention::project_value(const Tensor& value) const { return project(value, 2); }

Tensor MultiheadAttention::rotate(const Tensor& projected, std::size_t offset) const {
  return rotary_ ? rotary_->forward(projected, options_.num_heads, offset) : projected;
}

functional::AttentionResult MultiheadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v,
                                                       const std::optional<Mask>& key_padding_mask,
                                                       const AttnMask& attn_mask, bool need_weights,
                                                       std::size_t num_keys) const {
  functional::AttentionOptions options;
  options.num_keys = num_keys;
  options.attn_mask = attn_mask.additive;
  options.key_padding_mask = key_padding_mask;
  options.dropout_p = options_.dropout;
  options.training = is_training();
  options.generator = generator_;
  options.need_weights = need_weights;
  functional::AttentionResult result =
      functional::scaled_dot_product_attention(q, k, v, static_cast<std::int64_t>(options_.num_heads), options);
  result.output = run_hooks(out_proj->forward(result.output));
  return result;
}

Tensor MultiheadAttention::attend_gathered(const Tensor& q, const functional::GatheredKeyValues& kv) const {
  // Under bf16 autocast the query is rounded here and the cache holds rounded keys and values.
  const bool bf16 = autocast_precision() == Precision::bf16;
  const Tensor heads =
      functional::gathered_attention(bf16 ? round_bf16(q) : q, kv, static_cast<std::int64_t>(options_.num_heads));
  return run_hooks(out_proj->forward(heads));
}

functional::AttentionResult MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                                        const std::optional<Mask>& key_padding_mask,
                                                        const AttnMask& attn_mask, bool need_weights,
                                                        std::size_t query_offset, std::size_t key_offset) const {
  const std::size_t D = options_.embed_dim;
  for (const Tensor* t : {&query, &key, &value}) {
    if (t->dim() != 3 || t->size(2) != D) {
      throw Error(fmt::format("MultiheadAttention: query, key and value must be (B, L, {}), got {}, {} and {}", D,
                              shape_str(query.shape()), shape_str(key.shape()), shape_str(value.shape())));
    }
  }
  Tensor q = rotate(project_query(query), query_offset);  // (B, T, D)
  Tensor k = rotate(project_key(key), key_offset);        // (B, S, D)
  Tensor v = project_value(value);                        // (B, S, D)
  return attend(q, k, v, key_padding_mask, attn_mask, need_weights);
}

std::string MultiheadAttention::extra_repr() const {
  return fmt::format("embed_dim={}, num_heads={}, dropout={}{}", options_.embed_dim, options_.num_heads,
                     options_.dropout, options_.rotary ? ", rotary" : "");
}

}  // namespace xgrad::nn
