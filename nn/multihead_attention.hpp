// nn::MultiheadAttention: "Attention Is All You Need" 3.2.2 with PyTorch's parameter layout.
//
// Dimension legend: B = batch, T = query length, S = key length, D = embed_dim, H = num_heads.
#pragma once

#include <memory>
#include <optional>

#include <xgrad/core/generator.hpp>
#include <xgrad/nn/functional.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/positional.hpp>

namespace xgrad::nn {

/// An attention mask, additive (0 keeps, -inf blocks) or boolean (true blocks, as PyTorch's
/// bool attn_mask), of shape (T, S) or (B*H, T, S).
struct AttnMask {
  AttnMask() = default;
  AttnMask(Array additive) : additive(std::move(additive)) {}
  AttnMask(const Mask& blocked);
  std::optional<Array> additive;
};

struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(std::size_t embed_dim, std::size_t num_heads) : embed_dim(embed_dim), num_heads(num_heads) {}
  std::size_t embed_dim;
  std::size_t num_heads;
  float dropout = 0.f;      ///< on the attention weights, in training
  bool bias = true;         ///< in_proj_bias and out_proj.bias
  bool rotary = false;      ///< apply RoPE to queries and keys (positions from 0, or the given offsets)
  std::size_t rotary_max_len = 4096;
  float rotary_base = 10000.f;
};

/// Shape: query (B, T, D), key and value (B, S, D) -> output (B, T, D) (batch first).
/// Parameters, as torch.nn.MultiheadAttention: in_proj_weight (3D, D) = [W_q; W_k; W_v]
/// (xavier_uniform), in_proj_bias (3D) = 0, out_proj.weight (D, D), out_proj.bias (D) = 0.
///   head_i = Attention(q W_q,i, k W_k,i, v W_v,i),  out = Concat(head_1..head_H) W_o^T + b_o.
class MultiheadAttention : public Module, public Quantizable {
 public:
  MultiheadAttention(const MultiheadAttentionOptions& options, Generator& generator = default_generator());
  MultiheadAttention(std::size_t embed_dim, std::size_t num_heads, float dropout = 0.f,
                     Generator& generator = default_generator())
      : MultiheadAttention(with_dropout(MultiheadAttentionOptions(embed_dim, num_heads), dropout), generator) {}

  /// key_padding_mask (B, S): true marks padding keys. need_weights: also return the attention
  /// weights averaged over heads (B, T, S), for inspection (off by default, unlike PyTorch, as it
  /// costs time). query_offset and key_offset are the positions of the first query and key (RoPE).
  functional::AttentionResult forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                      const std::optional<Mask>& key_padding_mask = std::nullopt,
                                      const AttnMask& attn_mask = {}, bool need_weights = false,
                                      std::size_t query_offset = 0, std::size_t key_offset = 0) const;

  /// The three input projections q W_q^T + b_q, k W_k^T + b_k, v W_v^T + b_v.
  Tensor project_query(const Tensor& query) const;
  Tensor project_key(const Tensor& key) const;
  Tensor project_value(const Tensor& value) const;
  /// All three of one input (self-attention), as one product with the whole in_proj: x (..., D)
  /// -> (q, k, v), each (..., D).
  std::vector<Tensor> project_self(const Tensor& x) const;
  /// Attention over already projected (and, with RoPE, rotated) queries, keys and values,
  /// then the output projection: what forward() does after projecting. Decoders with a KV cache
  /// call it with cached keys and values, of which only the first num_keys are used (0: all;
  /// see functional::AttentionOptions::num_keys).
  functional::AttentionResult attend(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const std::optional<Mask>& key_padding_mask, const AttnMask& attn_mask,
                                     bool need_weights, std::size_t num_keys = 0) const;
  /// A decoding step's attention over keys and values kept by position and gathered per row
  /// (functional::gathered_attention), then the output projection: q (B, 1, D) projected (and
  /// rotated) -> (B, 1, D). Inference only: no dropout, no gradient.
  Tensor attend_gathered(const Tensor& q, const functional::GatheredKeyValues& kv) const;
  /// RoPE on projected queries or keys (identity without rotary).
  Tensor rotate(const Tensor& projected, std::size_t offset) const;

  const MultiheadAttentionOptions& options() const { return options_; }
  /// From now on the projections (in_proj and out_proj) run in int8 without gradients.
  void quantize_int8() override;
  bool is_quantized() const override { return int8_in_proj_ != nullptr; }
  std::vector<std::pair<std::string, Int8Weight*>> int8_weights() const override {  // out_proj: its own
    if (!int8_in_proj_) return {};
    return {{"in_proj_weight", int8_in_proj_.get()}};
  }

  Tensor in_proj_weight;  // (3D, D)
  Tensor in_proj_bias;    // (3D)
  std::shared_ptr<Linear> out_proj;

 protected:
  std::string extra_repr() const override;

 private:
  static MultiheadAttentionOptions with_dropout(MultiheadAttentionOptions o, float p) {
    o.dropout = p;
    return o;
  }
  Tensor project(const Tensor& x, std::size_t which) const;
  /// Rows [start, start + count) of in_proj (int8 where quantized and no gradient is recorded).
  Tensor project_rows(const Tensor& x, std::size_t start, std::size_t count) const;

  MultiheadAttentionOptions options_;
  Generator* generator_;
  std::shared_ptr<RotaryEmbedding> rotary_;
  std::shared_ptr<Int8Weight> int8_in_proj_;
};

}  // namespace xgrad::nn
