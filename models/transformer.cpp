// The encoder-decoder Transformer: configuration, the layers of Figure 1, and checkpoints.
#include <xgrad/models/transformer.hpp>

#include <cmath>
#include <map>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/ops/embedding.hpp>
#include <xgrad/autograd/ops/loss.hpp>
#include <xgrad/autograd/ops/shape_ops.hpp>
#include <xgrad/nn/functional.hpp>
#include <xgrad/nn/init.hpp>
#include <xgrad/models/checkpoint.hpp>
#include <xgrad/models/config_json.hpp>

namespace xgrad::models {

// --- configuration ------------------------------------------------------------------------------

TransformerConfig TransformerConfig::preset(const std::string& name, std::size_t src_vocab, std::size_t tgt_vocab) {
  TransformerConfig c;
  c.src_vocab = src_vocab;
  c.tgt_vocab = tgt_vocab;
  auto set = [&](std::size_t d, std::size_t h, std::size_t n, std::size_t f, float p) {
    c.d_model = d, c.nhead = h, c.num_encoder_layers = n, c.num_decoder_layers = n, c.dim_feedforward = f;
    c.dropout = p;
  };
  if (name == "tiny") set(64, 4, 2, 256, 0.1f);
  else if (name == "small") set(256, 8, 3, 1024, 0.1f);
  else if (name == "base") set(512, 8, 6, 2048, 0.1f);
  else if (name == "big") set(1024, 16, 6, 4096, 0.3f);
  else throw Error(fmt::format("TransformerConfig::preset: unknown preset \"{}\" (tiny, small, base, big)", name));
  return c;
}

std::string TransformerConfig::to_json() const {
  ConfigWriter j;
  j.write("src_vocab", src_vocab).write("tgt_vocab", tgt_vocab).write("d_model", d_model).write("nhead", nhead);
  j.write("num_encoder_layers", num_encoder_layers).write("num_decoder_layers", num_decoder_layers);
  j.write("dim_feedforward", dim_feedforward).write("dropout", dropout).write("activation", activation);
  j.write("norm_first", norm_first).write("max_len", max_len).write("pad_id", pad_id);
  // Keys beyond the reference's only when they differ from its model, so that
  // Seq2SeqTransformer(**config) builds an xgrad checkpoint's model.
  if (positional != "sinusoidal") j.write("positional", positional);
  if (tie_embeddings) j.write("tie_embeddings", true);
  return j.dump();
}

TransformerConfig TransformerConfig::from_json(const std::string& text) {
  ConfigReader j("TransformerConfig", text);
  TransformerConfig c;
  j.read("src_vocab", c.src_vocab);
  j.read("tgt_vocab", c.tgt_vocab);
  j.read("d_model", c.d_model);
  j.read("nhead", c.nhead);
  j.read("num_encoder_layers", c.num_encoder_layers);
  j.read("num_decoder_layers", c.num_decoder_layers);
  j.read("dim_feedforward", c.dim_feedforward);
  j.read("dropout", c.dropout);
  j.read("activation", c.activation);
  j.read("norm_first", c.norm_first);
  j.read("max_len", c.max_len);
  j.read("pad_id", c.pad_id);
  j.read("positional", c.positional);
  j.read("tie_embeddings", c.tie_embeddings);
  j.finish();
  c.validate();
  return c;
}

void TransformerConfig::validate() const {
  auto fail = [](const std::string& what) { throw Error("TransformerConfig: " + what); };
  if (src_vocab == 0 || tgt_vocab == 0) fail(fmt::format("vocabularies must be non-empty, got src_vocab {} and tgt_vocab {}", src_vocab, tgt_vocab));
  if (nhead == 0 || d_model == 0 || d_model % nhead != 0) fail(fmt::format("d_model {} must be a positive multiple of nhead {}", d_model, nhead));
  if (activation != "relu" && activation != "gelu") fail(fmt::format("activation must be \"relu\" or \"gelu\", got \"{}\"", activation));
  if (positional != "sinusoidal" && positional != "learned" && positional != "rope") {
    fail(fmt::format("positional must be \"sinusoidal\", \"learned\" or \"rope\", got \"{}\"", positional));
  }
  if (positional == "sinusoidal" && d_model % 2 != 0) fail(fmt::format("d_model {} must be even for the sinusoidal table", d_model));
  if (positional == "rope" && (d_model / nhead) % 2 != 0) {
    fail(fmt::format("rope rotates pairs of a head's features: the head width d_model / nhead = {} must be even", d_model / nhead));
  }
  if (!(dropout >= 0.f && dropout < 1.f)) fail(fmt::format("dropout must be in [0, 1), got {}", dropout));
  if (max_len == 0) fail("max_len must be positive");
  // Bounds far beyond any model trained on a CPU, so that a hostile configuration is an error
  // here rather than an allocation of terabytes.
  constexpr std::size_t kMaxWidth = std::size_t(1) << 17, kMaxLayers = 1024, kMaxLen = std::size_t(1) << 20,
                        kMaxVocab = std::size_t(1) << 24;
  if (d_model > kMaxWidth || dim_feedforward > kMaxWidth || nhead > kMaxWidth) {
    fail(fmt::format("d_model {}, dim_feedforward {} and nhead {} must each be at most {}", d_model, dim_feedforward,
                     nhead, kMaxWidth));
  }
  if (dim_feedforward == 0) fail("dim_feedforward must be positive");
  if (num_encoder_layers > kMaxLayers || num_decoder_layers > kMaxLayers) {
    fail(fmt::format("num_encoder_layers {} and num_decoder_layers {} must each be at most {}", num_encoder_layers,
                     num_decoder_layers, kMaxLayers));
  }
  if (max_len > kMaxLen) fail(fmt::format("max_len {} must be at most {}", max_len, kMaxLen));
  if (src_vocab > kMaxVocab || tgt_vocab > kMaxVocab) {
    fail(fmt::format("src_vocab {} and tgt_vocab {} must each be at most {}", src_vocab, tgt_vocab, kMaxVocab));
  }
  if (tie_embeddings && src_vocab != tgt_vocab) {
    fail(fmt::format("tie_embeddings needs one vocabulary, got src_vocab {} and tgt_vocab {}", src_vocab, tgt_vocab));
  }
}

LayerOptions TransformerConfig::layer_options() const {
  LayerOptions o;
  o.d_model = d_model;
  o.nhead = nhead;
  o.dim_feedforward = dim_feedforward;
  o.dropout = dropout;
  o.activation = nn::functional::activation_from_name(activation);
  o.norm_first = norm_first;
  o.rotary = positional == "rope";
  o.max_len = max_len;
  return o;
}

// --- embeddings ---------------------------------------------------------------------------------

Embeddings::Embeddings(std::size_t vocab, std::size_t d_model, Generator& generator)
    : Module("Embeddings"), vocab_(vocab), d_model_(d_model) {
  weight = register_parameter("weight", Tensor(Array::from_shape({vocab, d_model})));
  nn::init::normal_(weight, 0.0, 1.0, generator);
}

Embeddings::Embeddings(const Tensor& shared, std::size_t d_model)
    : Module("Embeddings"), vocab_(shared.value().shape()[0]), d_model_(d_model) {
  weight = register_parameter("weight", shared);
}

Tensor Embeddings::forward(const Indices& tokens) const {
  return run_hooks(mul(embedding(tokens, weight), std::sqrt(static_cast<float>(d_model_))));  // (B, L, D)
}

// --- generator --------------------------------------------------------------------------------

Projection::Projection(std::size_t d_model, std::size_t vocab, Generator& generator) : Module("Projection") {
  weight = register_parameter("weight", nn::quantizable_weight(vocab, d_model, int8_, [&] {
                                 Tensor w(Array::from_shape({vocab, d_model}));
                                 nn::init::kaiming_uniform_(w, std::sqrt(5.0), nn::init::FanMode::FanIn, "leaky_relu",
                                                            generator);
                                 return w;
                               }));
  bias = register_parameter("bias", Tensor(Array::from_shape({vocab})));
  const double bound = 1.0 / std::sqrt(static_cast<double>(d_model));
  nn::init::uniform_(bias, -bound, bound, generator);
}

Projection::Projection(const Tensor& shared, Generator& generator) : Module("Projection") {
  weight = register_parameter("weight", shared);
  const std::size_t vocab = shared.value().shape()[0], d_model = shared.value().shape()[1];
  bias = register_parameter("bias", Tensor(Array::from_shape({vocab})));
  const double bound = 1.0 / std::sqrt(static_cast<double>(d_model));
  nn::init::uniform_(bias, -bound, bound, generator);
}

Tensor Projection::forward(const Tensor& x) const {
  if (int8_ && !is_grad_enabled()) {
    return run_hooks(nn::functional::quantized_linear(x, int8_->get(), bias, 0, weight.size(0)));
  }
  if (int8_) int8_->require_fp32("Projection");
  return run_hooks(nn::functional::linear(x, weight, bias));
}

void Projection::quantize_int8() {
  if (!int8_) int8_ = std::make_shared<nn::Int8Weight>(weight);
}

// --- layers -------------------------------------------------------------------------------------

namespace {

/// Self-attention rotates queries and keys with RoPE when the options say so; the decoder's
/// cross-attention is built without it (see DecoderLayer).
nn::MultiheadAttentionOptions self_attention_options(const LayerOptions& o) {
  nn::MultiheadAttentionOptions options(o.d_model, o.nhead);
  options.dropout = o.dropout;
  options.rotary = o.rotary;
  options.rotary_max_len = o.max_len;
  return options;
}

/// The layer's feed-forward block, its linear1, dropout and linear2 registered in the layer itself
/// under torch's names (TransformerEncoderLayer and TransformerDecoderLayer keep them there).
template <class Layer>
void add_feed_forward(Layer& layer, const LayerOptions& o, Generator& generator) {
  layer.feed_forward = std::make_shared<nn::FeedForward>(o.d_model, o.dim_feedforward, o.dropout, o.activation, generator);
  layer.linear1 = layer.register_module("linear1", layer.feed_forward->linear1);
  layer.dropout = layer.register_module("dropout", layer.feed_forward->dropout);
  layer.linear2 = layer.register_module("linear2", layer.feed_forward->linear2);
}

/// A sublayer in its residual connection with layer norm, the pattern of every layer:
///   post-LN (the paper, 5.3): norm(x + sublayer(x));   pre-LN: x + sublayer(norm(x)).
template <class Sublayer>
Tensor residual(bool norm_first, const nn::LayerNorm& norm, const Tensor& x, const Sublayer& sublayer) {
  return norm_first ? x + sublayer(norm.forward(x)) : norm.forward(x, sublayer(x));
}

}  // namespace

EncoderLayer::EncoderLayer(const LayerOptions& o, Generator& generator)
    : Module("EncoderLayer"), norm_first_(o.norm_first) {
  self_attn = register_module("self_attn", std::make_shared<nn::MultiheadAttention>(self_attention_options(o), generator));
  add_feed_forward(*this, o, generator);
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(o.d_model));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(o.d_model));
  dropout1 = register_module("dropout1", std::make_shared<nn::Dropout>(o.dropout, generator));
  dropout2 = register_module("dropout2", std::make_shared<nn::Dropout>(o.dropout, generator));
}

Tensor EncoderLayer::self_attention_block(const Tensor& x, const std::optional<Mask>& src_padding) const {
  return dropout1->forward(self_attn->forward(x, x, x, src_padding).output);
}

Tensor EncoderLayer::feed_forward_block(const Tensor& x) const { return dropout2->forward(feed_forward->forward(x)); }

Tensor EncoderLayer::forward(const Tensor& x, const std::optional<Mask>& src_padding) const {
  Tensor h = residual(norm_first_, *norm1, x, [&](const Tensor& y) { return self_attention_block(y, src_padding); });
  h = residual(norm_first_, *norm2, h, [&](const Tensor& y) { return feed_forward_block(y); });  // (B, S, D)
  return run_hooks(h);
}

DecoderLayer::DecoderLayer(const LayerOptions& o, Generator& generator)
    : Module("DecoderLayer"), norm_first_(o.norm_first) {
  self_attn = register_module("self_attn", std::make_shared<nn::MultiheadAttention>(self_attention_options(o), generator));
  multihead_attn =
      register_module("multihead_attn", std::make_shared<nn::MultiheadAttention>(o.d_model, o.nhead, o.dropout, generator));
  add_feed_forward(*this, o, generator);
  norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(o.d_model));
  norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(o.d_model));
  norm3 = register_module("norm3", std::make_shared<nn::LayerNorm>(o.d_model));
  dropout1 = register_module("dropout1", std::make_shared<nn::Dropout>(o.dropout, generator));
  dropout2 = register_module("dropout2", std::make_shared<nn::Dropout>(o.dropout, generator));
  dropout3 = register_module("dropout3", std::make_shared<nn::Dropout>(o.dropout, generator));
}

Tensor DecoderLayer::self_attention_block(const Tensor& x, const Array& causal,
                                          const std::optional<Mask>& tgt_padding) const {
  return dropout1->forward(self_attn->forward(x, x, x, tgt_padding, nn::AttnMask(causal)).output);
}

Tensor DecoderLayer::cross_attention_block(const Tensor& x, const Tensor& memory,
                                           const std::optional<Mask>& src_padding) const {
  return dropout2->forward(multihead_attn->forward(x, memory, memory, src_padding).output);
}

Tensor DecoderLayer::feed_forward_block(const Tensor& x) const { return dropout3->forward(feed_forward->forward(x)); }

Tensor DecoderLayer::forward(const Tensor& x, const Tensor& memory, const Array& causal,
                             const std::optional<Mask>& tgt_padding, const std::optional<Mask>& src_padding) const {
  Tensor h = residual(norm_first_, *norm1, x, [&](const Tensor& y) { return self_attention_block(y, causal, tgt_padding); });
  h = residual(norm_first_, *norm2, h, [&](const Tensor& y) { return cross_attention_block(y, memory, src_padding); });
  h = residual(norm_first_, *norm3, h, [&](const Tensor& y) { return feed_forward_block(y); });  // (B, T, D)
  return run_hooks(h);
}

Tensor DecoderLayer::forward_step(const Tensor& x, DecoderLayerCache& cache, const DecodeStep& step) const {
  const std::size_t batch = x.shape()[0], d = x.shape()[2], t = step.position;
  // Self-attention of the new position over every position so far. With RoPE the new query and
  // key are rotated at their absolute position t, and the cache keeps rotated keys: q_t.k_j then
  // depends on t - j only, as in forward().
  auto self_attention = [&](const Tensor& y) {  // (B, 1, D)
    const nn::MultiheadAttention& attn = *self_attn;
    const std::vector<Tensor> qkv = attn.project_self(y);  // one product for the three: (B, 1, D) each
    cache.self_attn.append(attn.rotate(qkv[1], t), qkv[2], step.fed_padding);
    return attn.attend_gathered(attn.rotate(qkv[0], t), cache.self_attn.gathered(step.group_size));
  };
  // The rows of a group attend to one memory row: they go in as the queries of one sequence.
  auto cross_attention = [&](const Tensor& y) {
    const nn::MultiheadAttention& attn = *multihead_attn;
    const bool gathered = cache.group_k.defined();
    const auto size = static_cast<std::int64_t>(step.group_size);
    Tensor q = attn.project_query(y);                                             // (B, 1, D)
    if (size > 1) q = reshape(q, {static_cast<std::int64_t>(batch) / size, size, -1});  // (G, size, D)
    const Tensor out = attn.attend(q, gathered ? cache.group_k : cache.cross_k, gathered ? cache.group_v : cache.cross_v,
                                   *step.group_padding, {}, false)
                           .output;  // (G, size, D)
    return size > 1 ? reshape(out, {static_cast<std::int64_t>(batch), 1, static_cast<std::int64_t>(d)}) : out;
  };
  auto ffn = [&](const Tensor& y) { return feed_forward->forward(y); };  // (B, 1, F) inside
  Tensor h = residual(norm_first_, *norm1, x, self_attention);
  h = residual(norm_first_, *norm2, h, cross_attention);
  return residual(norm_first_, *norm3, h, ffn);  // (B, 1, D)
}

// --- stacks -------------------------------------------------------------------------------------

Encoder::Encoder(const TransformerConfig& c, Generator& generator) : Module("Encoder") {
  layers = register_module("layers", std::make_shared<nn::ModuleList<EncoderLayer>>());
  const LayerOptions options = c.layer_options();
  for (std::size_t i = 0; i < c.num_encoder_layers; ++i) layers->push_back(std::make_shared<EncoderLayer>(options, generator));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(c.d_model));
}

Tensor Encoder::forward(const Tensor& x, const std::optional<Mask>& src_padding) const {
  Tensor h = x;  // (B, S, D)
  for (const auto& layer : *layers) h = layer->forward(h, src_padding);
  return run_hooks(norm->forward(h));
}

Decoder::Decoder(const TransformerConfig& c, Generator& generator) : Module("Decoder") {
  layers = register_module("layers", std::make_shared<nn::ModuleList<DecoderLayer>>());
  const LayerOptions options = c.layer_options();
  for (std::size_t i = 0; i < c.num_decoder_layers; ++i) layers->push_back(std::make_shared<DecoderLayer>(options, generator));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(c.d_model));
}

Tensor Decoder::forward(const Tensor& x, const Tensor& memory, const Array& causal,
                        const std::optional<Mask>& tgt_padding, const std::optional<Mask>& src_padding) const {
  Tensor h = x;  // (B, T, D)
  for (const auto& layer : *layers) h = layer->forward(h, memory, causal, tgt_padding, src_padding);
  return run_hooks(norm->forward(h));
}

EncoderDecoder::EncoderDecoder(const TransformerConfig& c, Generator& generator) : Module("EncoderDecoder") {
  encoder = register_module("encoder", std::make_shared<Encoder>(c, generator));
  decoder = register_module("decoder", std::make_shared<Decoder>(c, generator));
  for (const Tensor& p : parameters()) {
    if (p.value().dimension() > 1) nn::init::xavier_uniform_(p, 1.0, generator);
  }
}

// --- the model ----------------------------------------------------------------------------------

Transformer::Transformer(const TransformerConfig& c, Generator& generator) : Module("Transformer"), config_(c) {
  config_.validate();
  src_embed = register_module("src_embed", std::make_shared<Embeddings>(c.src_vocab, c.d_model, generator));
  tgt_embed = register_module("tgt_embed", c.tie_embeddings ? std::make_shared<Embeddings>(src_embed->weight, c.d_model)
                                                             : std::make_shared<Embeddings>(c.tgt_vocab, c.d_model, generator));
  transformer = register_module("transformer", std::make_shared<EncoderDecoder>(c, generator));
  projection = register_module("generator", c.tie_embeddings ? std::make_shared<Projection>(src_embed->weight, generator)
                                                             : std::make_shared<Projection>(c.d_model, c.tgt_vocab, generator));
  if (c.positional == "sinusoidal") {
    positional = register_module("positional", std::make_shared<nn::SinusoidalPositionalEncoding>(c.d_model, c.max_len));
  } else if (c.positional == "learned") {
    // As GPT-2 and BERT: N(0, 0.02^2), small beside the scaled token embeddings at first.
    src_pos = register_module("src_pos", std::make_shared<nn::LearnedPositionalEmbedding>(c.max_len, c.d_model, generator));
    tgt_pos = register_module("tgt_pos", std::make_shared<nn::LearnedPositionalEmbedding>(c.max_len, c.d_model, generator));
    src_pos->weight.mutable_value() *= 0.02f;
    tgt_pos->weight.mutable_value() *= 0.02f;
  }
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout, generator));
}

void Transformer::rescale_embedding_init(Generator& generator) {
  const double std = 1.0 / std::sqrt(static_cast<double>(config_.d_model));
  nn::init::normal_(src_embed->weight, 0.0, std, generator);
  if (!config_.tie_embeddings) nn::init::normal_(tgt_embed->weight, 0.0, std, generator);
}

Mask Transformer::padding_mask(const Indices& tokens) const {
  if (tokens.dimension() != 2) {
    throw Error(fmt::format("Transformer: token ids must be (B, L), got {}", shape_str(Shape(tokens.shape().begin(), tokens.shape().end()))));
  }
  Mask mask = Mask::from_shape(tokens.shape());
  for (std::size_t i = 0; i < tokens.size(); ++i) mask.data()[i] = tokens.data()[i] == config_.pad_id;
  return mask;
}

Tensor Transformer::embed(const Embeddings& table, const nn::LearnedPositionalEmbedding* learned,
                          const Indices& tokens, std::size_t offset) const {
  if (tokens.dimension() == 2 && offset + tokens.shape()[1] > config_.max_len) {
    if (offset == 0) {
      throw Error(fmt::format("Transformer: sequence length {} exceeds max_len {}", tokens.shape()[1], config_.max_len));
    }
    throw Error(fmt::format("Transformer: positions {} to {} exceed max_len {}", offset, offset + tokens.shape()[1] - 1,
                            config_.max_len));
  }
  Tensor x = table.forward(tokens);  // (B, L, D)
  if (positional) x = positional->forward(x, offset);
  if (learned) x = learned->forward(x, offset);
  return dropout->forward(x);
}

Tensor Transformer::embed_source(const Indices& src) const { return embed(*src_embed, src_pos.get(), src, 0); }

Tensor Transformer::embed_target(const Indices& tgt, std::size_t offset) const {
  return embed(*tgt_embed, tgt_pos.get(), tgt, offset);
}

Tensor Transformer::encode(const Indices& src) const {
  return transformer->encoder->forward(embed_source(src), padding_mask(src));  // (B, S, D)
}

Tensor Transformer::decode(const Indices& tgt_in, const Tensor& memory, const std::optional<Mask>& src_padding) const {
  const Mask tgt_padding = padding_mask(tgt_in);  // (B, T)
  const Array causal = nn::functional::causal_mask(tgt_in.shape()[1]);  // (T, T)
  return transformer->decoder->forward(embed_target(tgt_in), memory, causal, tgt_padding, src_padding);
}

Tensor Transformer::forward(const Indices& src, const Indices& tgt_in) const {
  const Mask src_padding = padding_mask(src);  // (B, S)
  if (tgt_in.dimension() != 2 || tgt_in.shape()[0] != src.shape()[0]) {
    throw Error(fmt::format("Transformer: src {} and tgt_in {} must be (B, S) and (B, T) with the same B",
                            shape_str(Shape(src.shape().begin(), src.shape().end())),
                            shape_str(Shape(tgt_in.shape().begin(), tgt_in.shape().end()))));
  }
  const Tensor memory = transformer->encoder->forward(embed_source(src), src_padding);  // (B, S, D)
  return run_hooks(projection->forward(decode(tgt_in, memory, src_padding)));                // (B, T, V)
}

Tensor Transformer::loss(const Indices& src, const Indices& tgt_in, const Indices& tgt_out, float label_smoothing) const {
  if (tgt_out.shape() != tgt_in.shape()) {
    throw Error(fmt::format("Transformer::loss: tgt_out {} must have tgt_in's shape {}",
                            shape_str(Shape(tgt_out.shape().begin(), tgt_out.shape().end())),
                            shape_str(Shape(tgt_in.shape().begin(), tgt_in.shape().end()))));
  }
  const Tensor logits = forward(src, tgt_in);  // (B, T, V)
  const auto vocab = static_cast<std::int64_t>(config_.tgt_vocab);
  Indices targets = Indices::from_shape({tgt_out.size()});  // (B*T)
  std::copy(tgt_out.data(), tgt_out.data() + tgt_out.size(), targets.data());
  CrossEntropyOptions options;
  options.ignore_index = config_.pad_id;
  options.label_smoothing = label_smoothing;
  return cross_entropy(reshape(logits, {-1, vocab}), targets, options);
}

// --- checkpoints --------------------------------------------------------------------------------

std::shared_ptr<Transformer> load_model(const std::string& path) { return load<Transformer>(path); }

void save_model(const Transformer& model, const std::string& path) { save(model, path); }

}  // namespace xgrad::models
