// The encoder-decoder Transformer of "Attention Is All You Need", one class per box of the
// paper's Figure 1, with the computation and parameter names of torch.nn.Transformer
// (batch_first) wrapped as the reference Seq2SeqTransformer: a checkpoint written by either
// loads in the other and gives the same logits and gradients.
//
// Dimension legend: B = batch, S = source length, T = target length, D = d_model,
// H = heads, F = dim_feedforward, V = target vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <xgrad/core/generator.hpp>
#include <xgrad/nn/container.hpp>
#include <xgrad/nn/dropout.hpp>
#include <xgrad/nn/feed_forward.hpp>
#include <xgrad/nn/kv_cache.hpp>
#include <xgrad/nn/functional.hpp>
#include <xgrad/nn/layer_norm.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/multihead_attention.hpp>
#include <xgrad/nn/positional.hpp>

namespace xgrad::models {

/// What one encoder or decoder layer is built from (TransformerConfig::layer_options() for the
/// Transformer; other models fill it in themselves).
struct LayerOptions {
  std::size_t d_model = 512;
  std::size_t nhead = 8;
  std::size_t dim_feedforward = 2048;
  float dropout = 0.1f;
  nn::functional::Activation activation = nn::functional::Activation::relu;
  bool norm_first = false;  ///< pre-LN when true, the paper's post-LN when false
  bool rotary = false;      ///< RoPE on the self-attention's queries and keys
  std::size_t max_len = 512;  ///< the longest sequence RoPE's table covers
};

/// The reference's CONFIG_KEYS, plus the kind of positional encoding.
struct TransformerConfig {
  std::size_t src_vocab = 0;
  std::size_t tgt_vocab = 0;
  std::size_t d_model = 512;
  std::size_t nhead = 8;
  std::size_t num_encoder_layers = 6;
  std::size_t num_decoder_layers = 6;
  std::size_t dim_feedforward = 2048;
  float dropout = 0.1f;
  std::string activation = "relu";  ///< "relu" or "gelu"
  bool norm_first = false;          ///< pre-LN when true, the paper's post-LN when false
  std::size_t max_len = 512;
  std::int64_t pad_id = 0;
  /// "sinusoidal" (the paper's fixed table, added to the embeddings), "learned" (a trained table
  /// per side, added to the embeddings) or "rope" (rotary embeddings on the queries and keys of
  /// the encoder's and decoder's self-attention; nothing added to the embeddings).
  std::string positional = "sinusoidal";
  /// One table for source and target embeddings and the generator's weight (3.4; needs a shared
  /// vocabulary). Not a key of the reference: written to JSON only when true.
  bool tie_embeddings = false;

  /// The paper's sizes: "tiny" (D 64, 4 heads, 2+2 layers, F 256), "small" (256/8/3+3/1024),
  /// "base" (512/8/6+6/2048, dropout 0.1), "big" (1024/16/6+6/4096, dropout 0.3).
  static TransformerConfig preset(const std::string& name, std::size_t src_vocab, std::size_t tgt_vocab);
  /// The JSON object the reference writes as a checkpoint's "config" metadata: its CONFIG_KEYS,
  /// and positional and tie_embeddings only when they are not the reference's (sinusoidal, untied).
  std::string to_json() const;
  /// Parses that JSON; keys absent keep their defaults, unknown keys and bad values throw.
  static TransformerConfig from_json(const std::string& text);
  /// Throws xgrad::Error on an inconsistent configuration (e.g. D not divisible by H).
  void validate() const;
  /// The options of each of its layers (the activation resolved from its name).
  LayerOptions layer_options() const;
};

/// Token embedding scaled by sqrt(D) (3.4): (B, L) int64 -> (B, L, D). Parameter weight (vocab, D)
/// ~ N(0, 1), as nn.Embedding, so the checkpoint name is "<name>.weight".
class Embeddings : public nn::Module {
 public:
  Embeddings(std::size_t vocab, std::size_t d_model, Generator& generator = default_generator());
  /// Shares `weight` (vocab, D) with another module (tied embeddings).
  Embeddings(const Tensor& weight, std::size_t d_model);
  Tensor forward(const Indices& tokens) const;

  Tensor weight;  // (vocab, D)

 private:
  std::size_t vocab_, d_model_;
};

/// The generator (Figure 1's "Linear" before the softmax): hidden (..., D) -> logits (..., V) =
/// x W^T + b. Parameters weight (V, D) and bias (V), initialised as nn.Linear's, or weight shared
/// with the embeddings when they are tied.
class Projection : public nn::Module, public nn::Quantizable {
 public:
  Projection(std::size_t d_model, std::size_t vocab, Generator& generator = default_generator());
  Projection(const Tensor& weight, Generator& generator = default_generator());
  Tensor forward(const Tensor& x) const;
  /// From now on forward without gradients runs in int8 (a copy: a tied embedding stays fp32).
  void quantize_int8() override;
  bool is_quantized() const override { return int8_ != nullptr; }
  std::vector<std::pair<std::string, nn::Int8Weight*>> int8_weights() const override {
    if (!int8_) return {};
    return {{"weight", int8_.get()}};
  }

  Tensor weight;  // (V, D)
  Tensor bias;    // (V)

 private:
  std::shared_ptr<nn::Int8Weight> int8_;
};

/// One encoder layer (Figure 1, left): self-attention, then the position-wise feed-forward, each
/// in a residual connection with layer norm, as torch.nn.TransformerEncoderLayer:
///   post-LN: x = norm1(x + dropout1(SelfAttn(x)));  x = norm2(x + dropout2(FFN(x)))
///   pre-LN:  x = x + dropout1(SelfAttn(norm1(x)));  x = x + dropout2(FFN(norm2(x)))
/// with FFN(x) = linear2(dropout(act(linear1(x)))), an nn::FeedForward whose parts the layer
/// registers under torch's names (linear1, dropout, linear2). With rotary options, self_attn
/// rotates its queries and keys by their positions 0 .. S-1. Shape: (B, S, D) -> (B, S, D).
class EncoderLayer : public nn::Module {
 public:
  EncoderLayer(const LayerOptions& options, Generator& generator = default_generator());
  Tensor forward(const Tensor& x, const std::optional<Mask>& src_padding) const;

  std::shared_ptr<nn::MultiheadAttention> self_attn;
  std::shared_ptr<nn::FeedForward> feed_forward;  // its linear1, dropout, linear2 are the layer's
  std::shared_ptr<nn::Linear> linear1;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> linear2;
  std::shared_ptr<nn::LayerNorm> norm1, norm2;
  std::shared_ptr<nn::Dropout> dropout1, dropout2;

 private:
  Tensor self_attention_block(const Tensor& x, const std::optional<Mask>& src_padding) const;
  Tensor feed_forward_block(const Tensor& x) const;
  bool norm_first_;
};

/// What every decoder layer shares in one step of incremental decoding (IncrementalDecoder keeps
/// it): the position t of the new token, which of the B rows fed a pad token, and how the rows
/// go through cross-attention.
struct DecodeStep {
  std::size_t position = 0;              // t
  const Mask* fed_padding = nullptr;     // (B, 1): true where the token fed was pad_id
  std::size_t group_size = 1;            // rows per memory row, taken together in cross-attention
  const Mask* group_padding = nullptr;   // (G, S), G = B / group_size
};

/// One decoder layer's cache: its self-attention keys (rotated with RoPE) and values for every
/// position fed so far, with the rows' paths (nn::KVCache), and the cross-attention keys and
/// values of the memory, projected once (M, S, D); group_k and group_v are their rows per group
/// when the groups are not the M memory rows in order.
struct DecoderLayerCache {
  nn::KVCache self_attn;
  Tensor cross_k, cross_v;
  Tensor group_k, group_v;
};

/// One decoder layer (Figure 1, right): masked self-attention, attention over the encoder's
/// output (memory), then the feed-forward, each a residual sublayer with layer norm, as
/// torch.nn.TransformerDecoderLayer:
///   post-LN: x = norm1(x + SelfAttn(x));  x = norm2(x + CrossAttn(x, m));  x = norm3(x + FFN(x))
///   pre-LN:  x = x + SelfAttn(norm1(x));  x = x + CrossAttn(norm2(x), m);  x = x + FFN(norm3(x))
/// (each sublayer's output through dropout1/2/3). With positional "rope", self_attn rotates its
/// queries and keys by their positions; multihead_attn never does: its queries are target
/// positions and its keys source positions, of two different sequences, so the relative offset
/// RoPE encodes would mean nothing there. Shape: (B, T, D), memory (B, S, D) -> (B, T, D).
class DecoderLayer : public nn::Module {
 public:
  DecoderLayer(const LayerOptions& options, Generator& generator = default_generator());
  Tensor forward(const Tensor& x, const Tensor& memory, const Array& causal, const std::optional<Mask>& tgt_padding,
                 const std::optional<Mask>& src_padding) const;
  /// The same layer for one new position t of each row: x (B, 1, D) -> (B, 1, D). Its
  /// self-attention key and value join `cache`, and its query attends to every position so far
  /// along the row's path (no causal mask needed); with RoPE the query and key are rotated at t.
  /// Equal to forward()'s position t on the whole prefix, dropout aside. No gradient.
  Tensor forward_step(const Tensor& x, DecoderLayerCache& cache, const DecodeStep& step) const;

  std::shared_ptr<nn::MultiheadAttention> self_attn;
  std::shared_ptr<nn::MultiheadAttention> multihead_attn;
  std::shared_ptr<nn::FeedForward> feed_forward;  // its linear1, dropout, linear2 are the layer's
  std::shared_ptr<nn::Linear> linear1;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> linear2;
  std::shared_ptr<nn::LayerNorm> norm1, norm2, norm3;
  std::shared_ptr<nn::Dropout> dropout1, dropout2, dropout3;

 private:
  Tensor self_attention_block(const Tensor& x, const Array& causal, const std::optional<Mask>& tgt_padding) const;
  Tensor cross_attention_block(const Tensor& x, const Tensor& memory, const std::optional<Mask>& src_padding) const;
  Tensor feed_forward_block(const Tensor& x) const;
  bool norm_first_;
};

/// N encoder layers and a final layer norm: (B, S, D) -> memory (B, S, D).
class Encoder : public nn::Module {
 public:
  Encoder(const TransformerConfig& config, Generator& generator = default_generator());
  Tensor forward(const Tensor& x, const std::optional<Mask>& src_padding) const;

  std::shared_ptr<nn::ModuleList<EncoderLayer>> layers;
  std::shared_ptr<nn::LayerNorm> norm;
};

/// N decoder layers and a final layer norm: (B, T, D), memory (B, S, D) -> (B, T, D).
class Decoder : public nn::Module {
 public:
  Decoder(const TransformerConfig& config, Generator& generator = default_generator());
  Tensor forward(const Tensor& x, const Tensor& memory, const Array& causal, const std::optional<Mask>& tgt_padding,
                 const std::optional<Mask>& src_padding) const;

  std::shared_ptr<nn::ModuleList<DecoderLayer>> layers;
  std::shared_ptr<nn::LayerNorm> norm;
};

/// torch.nn.Transformer's body: "transformer.encoder..." and "transformer.decoder...".
/// Every parameter of rank > 1 is re-drawn with xavier_uniform_, as its _reset_parameters.
class EncoderDecoder : public nn::Module {
 public:
  EncoderDecoder(const TransformerConfig& config, Generator& generator = default_generator());

  std::shared_ptr<Encoder> encoder;
  std::shared_ptr<Decoder> decoder;
};

/// The whole model: embeddings, encoder-decoder, and the generator (the final linear layer
/// giving logits), with positions as config.positional says. Token ids equal to pad_id are
/// masked as keys in every attention; the decoder's self-attention is causal.
class Transformer : public nn::Module {
 public:
  using Config = TransformerConfig;
  explicit Transformer(const TransformerConfig& config, Generator& generator = default_generator());

  /// src (B, S) -> memory (B, S, D).
  Tensor encode(const Indices& src) const;
  /// Token embeddings with their positions, offset .. offset + L - 1 (offset > 0 for a decoder
  /// fed one token at a time): dropout(embed(tokens) * sqrt(D) + PE), PE the sinusoidal or
  /// learned table of that side; with RoPE nothing is added. (B, L) -> (B, L, D).
  Tensor embed_source(const Indices& src) const;
  Tensor embed_target(const Indices& tgt, std::size_t offset = 0) const;
  /// tgt_in (B, T), memory (B, S, D), src_padding (B, S) true at padding -> hidden (B, T, D).
  Tensor decode(const Indices& tgt_in, const Tensor& memory, const std::optional<Mask>& src_padding) const;
  /// src (B, S), tgt_in (B, T) -> logits (B, T, V).
  Tensor forward(const Indices& src, const Indices& tgt_in) const;
  /// Mean cross-entropy of the logits against tgt_out (B, T) over positions where tgt_out != pad_id.
  Tensor loss(const Indices& src, const Indices& tgt_in, const Indices& tgt_out, float label_smoothing = 0.f) const;

  /// (B, L) -> (B, L), true where the token is pad_id.
  Mask padding_mask(const Indices& tokens) const;

  /// Redraws the embedding tables from N(0, 1/D), so that embed * sqrt(D) has unit variance, the
  /// scale of the positional encodings (as tensor2tensor and fairseq draw them). The constructor
  /// draws N(0, 1), as torch.nn.Embedding, which at D = 64 leaves the positions 8x quieter than
  /// the tokens and makes position-dependent tasks slow to learn. Source table first, then the
  /// target table unless it is the same (tied).
  void rescale_embedding_init(Generator& generator = default_generator());
  const TransformerConfig& config() const { return config_; }

  std::shared_ptr<Embeddings> src_embed;
  std::shared_ptr<Embeddings> tgt_embed;
  std::shared_ptr<EncoderDecoder> transformer;
  /// The final linear layer, registered as "generator" (the reference's and the Annotated
  /// Transformer's name, so checkpoints say generator.weight); named projection here so as not
  /// to read as a random Generator.
  std::shared_ptr<Projection> projection;
  /// Set by config.positional: the sinusoidal table, or the learned tables src_pos and tgt_pos;
  /// with "rope" none of them (the rotation lives in the self-attention modules).
  std::shared_ptr<nn::SinusoidalPositionalEncoding> positional;  // "sinusoidal": non-persistent table
  std::shared_ptr<nn::LearnedPositionalEmbedding> src_pos;      // "learned": weight (max_len, D)
  std::shared_ptr<nn::LearnedPositionalEmbedding> tgt_pos;      // "learned": weight (max_len, D)
  std::shared_ptr<nn::Dropout> dropout;

 private:
  Tensor embed(const Embeddings& table, const nn::LearnedPositionalEmbedding* learned, const Indices& tokens,
               std::size_t offset) const;
  TransformerConfig config_;
};

/// models::load<Transformer>(path) and models::save(model, path) (models/checkpoint.hpp), by the
/// names the seq2seq program and earlier code use.
std::shared_ptr<Transformer> load_model(const std::string& path);
void save_model(const Transformer& model, const std::string& path);

}  // namespace xgrad::models
