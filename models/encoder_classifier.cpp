// models::EncoderClassifier: encoder layers, masked mean pooling and a linear head.
#include <xgrad/models/encoder_classifier.hpp>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/autograd/ops/loss.hpp>
#include <xgrad/autograd/ops/reduction.hpp>
#include <xgrad/core/shape.hpp>
#include <xgrad/models/config_json.hpp>

namespace xgrad::models {

void EncoderClassifierConfig::validate() const {
  auto fail = [](const std::string& what) { throw Error("EncoderClassifierConfig: " + what); };
  if (vocab == 0 || num_classes == 0) fail(fmt::format("vocab {} and num_classes {} must be positive", vocab, num_classes));
  if (pad_id < 0 || pad_id >= static_cast<std::int64_t>(vocab)) fail(fmt::format("pad_id {} must be in [0, {})", pad_id, vocab));
  if (nhead == 0 || d_model == 0 || d_model % nhead != 0) fail(fmt::format("d_model {} must be a positive multiple of nhead {}", d_model, nhead));
  if (max_len == 0) fail("max_len must be positive");
  if (dropout < 0.f || dropout >= 1.f) fail(fmt::format("dropout must be in [0, 1), got {}", dropout));
  if (activation != "relu" && activation != "gelu") fail(fmt::format("activation must be \"relu\" or \"gelu\", got \"{}\"", activation));
}

std::string EncoderClassifierConfig::to_json() const {
  return ConfigWriter()
      .write("vocab", vocab)
      .write("num_classes", num_classes)
      .write("d_model", d_model)
      .write("nhead", nhead)
      .write("num_layers", num_layers)
      .write("dim_feedforward", dim_feedforward)
      .write("max_len", max_len)
      .write("pad_id", pad_id)
      .write("dropout", dropout)
      .write("activation", activation)
      .write("norm_first", norm_first)
      .dump();
}

EncoderClassifierConfig EncoderClassifierConfig::from_json(const std::string& text) {
  ConfigReader j("EncoderClassifierConfig", text);
  EncoderClassifierConfig c;
  j.read("vocab", c.vocab);
  j.read("num_classes", c.num_classes);
  j.read("d_model", c.d_model);
  j.read("nhead", c.nhead);
  j.read("num_layers", c.num_layers);
  j.read("dim_feedforward", c.dim_feedforward);
  j.read("max_len", c.max_len);
  j.read("pad_id", c.pad_id);
  j.read("dropout", c.dropout);
  j.read("activation", c.activation);
  j.read("norm_first", c.norm_first);
  j.finish();
  c.validate();
  return c;
}

EncoderClassifier::EncoderClassifier(const EncoderClassifierConfig& c, Generator& generator)
    : Module("EncoderClassifier"), config_(c) {
  config_.validate();
  // BERT's initialisation of the tables: N(0, 0.02^2).
  embed = register_module("embed", std::make_shared<nn::Embedding>(c.vocab, c.d_model, std::nullopt, generator));
  embed->weight.mutable_value() *= 0.02f;
  positions = register_module("positions", std::make_shared<nn::LearnedPositionalEmbedding>(c.max_len, c.d_model, generator));
  positions->weight.mutable_value() *= 0.02f;
  layers = register_module("layers", std::make_shared<nn::ModuleList<EncoderLayer>>());
  LayerOptions layer;
  layer.d_model = c.d_model;
  layer.nhead = c.nhead;
  layer.dim_feedforward = c.dim_feedforward;
  layer.dropout = c.dropout;
  layer.activation = nn::functional::activation_from_name(c.activation);
  layer.norm_first = c.norm_first;
  layer.max_len = c.max_len;
  for (std::size_t i = 0; i < c.num_layers; ++i) layers->push_back(std::make_shared<EncoderLayer>(layer, generator));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(c.d_model));
  head = register_module("head", std::make_shared<nn::Linear>(c.d_model, c.num_classes, true, generator));
}

Tensor EncoderClassifier::forward(const Indices& ids) const {
  if (ids.dimension() != 2 || ids.shape()[1] == 0) {
    throw Error(fmt::format("EncoderClassifier: token ids must be (B, L) with L >= 1, got {}",
                            shape_str(Shape(ids.shape().begin(), ids.shape().end()))));
  }
  const std::size_t b = ids.shape()[0], l = ids.shape()[1];
  if (l > config_.max_len) throw Error(fmt::format("EncoderClassifier: sequence length {} exceeds max_len {}", l, config_.max_len));
  Mask padding = Mask::from_shape({b, l});  // (B, L), true at padding
  Array keep = Array::from_shape({b, l, 1});  // (B, L, 1), 1 / count at non-padding, else 0
  for (std::size_t i = 0; i < b; ++i) {
    std::size_t count = 0;
    for (std::size_t j = 0; j < l; ++j) {
      const std::int64_t id = ids(i, j);
      if (id < 0 || id >= static_cast<std::int64_t>(config_.vocab)) {
        throw Error(fmt::format("EncoderClassifier: token id {} at ({}, {}) is outside the vocabulary [0, {})", id, i, j, config_.vocab));
      }
      padding(i, j) = id == config_.pad_id;
      count += !padding(i, j);
    }
    if (count == 0) throw Error(fmt::format("EncoderClassifier: sequence {} is only padding (pad_id {})", i, config_.pad_id));
    for (std::size_t j = 0; j < l; ++j) keep(i, j, 0) = padding(i, j) ? 0.f : 1.f / static_cast<float>(count);
  }
  Tensor h = positions->forward(embed->forward(ids));  // (B, L, D)
  for (const auto& layer : *layers) h = layer->forward(h, padding);
  h = norm->forward(h);
  const Tensor pooled = sum(h * Tensor(keep), {1});  // (B, D): mean over non-padding positions
  return run_hooks(head->forward(pooled));           // (B, C)
}

Tensor EncoderClassifier::loss(const Indices& ids, const Indices& labels) const {
  if (labels.dimension() != 1 || ids.dimension() != 2 || labels.shape()[0] != ids.shape()[0]) {
    throw Error(fmt::format("EncoderClassifier::loss: labels {} must be (B) for ids {}",
                            shape_str(Shape(labels.shape().begin(), labels.shape().end())),
                            shape_str(Shape(ids.shape().begin(), ids.shape().end()))));
  }
  return cross_entropy(forward(ids), labels);
}

}  // namespace xgrad::models
