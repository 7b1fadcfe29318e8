// A BERT-style sequence classifier: token embeddings plus learned positions, the Transformer's
// encoder layers with a padding mask, a final layer norm, the mean over non-padding positions,
// and a linear head giving class logits.
//
// Dimension legend: B = batch, L = length, D = d_model, C = classes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <xgrad/core/generator.hpp>
#include <xgrad/models/transformer.hpp>
#include <xgrad/nn/container.hpp>
#include <xgrad/nn/embedding.hpp>
#include <xgrad/nn/layer_norm.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/positional.hpp>

namespace xgrad::models {

struct EncoderClassifierConfig {
  std::size_t vocab = 0;
  std::size_t num_classes = 2;
  std::size_t d_model = 64;
  std::size_t nhead = 4;
  std::size_t num_layers = 2;
  std::size_t dim_feedforward = 256;
  std::size_t max_len = 128;
  std::int64_t pad_id = 0;
  float dropout = 0.f;
  std::string activation = "gelu";  ///< "relu" or "gelu"
  bool norm_first = true;           ///< pre-LN (BERT itself is post-LN; pre-LN trains more easily)
  /// Throws xgrad::Error on an inconsistent configuration.
  void validate() const;
  /// Every field as a JSON object (a checkpoint's "config" metadata).
  std::string to_json() const;
  /// Parses that JSON; keys absent keep their defaults, unknown keys and bad values throw.
  static EncoderClassifierConfig from_json(const std::string& text);
};

/// Saved and loaded as every model: models::save(model, path), models::load<EncoderClassifier>(path).
/// ids (B, L) -> logits (B, C). Pooling is the mean of the final hidden states over the positions
/// whose id is not pad_id; padding keys are masked in every attention, so padding never changes
/// the logits. Positions count from the first column: pad at the end (padding placed before or
/// between tokens shifts their positions). A sequence made only of padding is an error.
class EncoderClassifier : public nn::Module {
 public:
  using Config = EncoderClassifierConfig;
  explicit EncoderClassifier(const EncoderClassifierConfig& config, Generator& generator = default_generator());

  Tensor forward(const Indices& ids) const;
  /// Mean cross-entropy of the logits against labels (B) in [0, C).
  Tensor loss(const Indices& ids, const Indices& labels) const;

  const EncoderClassifierConfig& config() const { return config_; }

  std::shared_ptr<nn::Embedding> embed;                  // (V, D)
  std::shared_ptr<nn::LearnedPositionalEmbedding> positions;  // (max_len, D)
  std::shared_ptr<nn::ModuleList<EncoderLayer>> layers;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> head;  // D -> C

 private:
  EncoderClassifierConfig config_;
};

}  // namespace xgrad::models
