// The program's settings: the model a preset and overrides describe, and the training settings
// as the JSON saved in a run folder.
#include "seq2seq.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/utils/atomic_file.hpp>

namespace seq2seq {

xgrad::models::TransformerConfig ModelSettings::config(std::size_t vocab) const {
  auto c = xgrad::models::TransformerConfig::preset(preset, vocab, vocab);
  c.pad_id = xgrad::data::Tokenizer::pad_id;
  if (d_model) c.d_model = *d_model;
  if (nhead) c.nhead = *nhead;
  if (layers) c.num_encoder_layers = c.num_decoder_layers = *layers;
  if (dim_feedforward) c.dim_feedforward = *dim_feedforward;
  if (max_len) c.max_len = *max_len;
  if (dropout) c.dropout = *dropout;
  if (activation) c.activation = *activation;
  if (positional) c.positional = *positional;
  if (norm_first) c.norm_first = *norm_first;
  if (tie_embeddings) c.tie_embeddings = *tie_embeddings;
  c.validate();
  return c;
}

namespace {

template <typename T>
void put(Json& j, const char* key, const std::optional<T>& value) {
  if (value) j[key] = *value;
}
template <typename T>
void take(const Json& j, const char* key, std::optional<T>& value) {
  if (j.contains(key)) value = j.at(key).get<T>();
}
template <typename T>
void take(const Json& j, const char* key, T& value) {
  if (j.contains(key)) value = j.at(key).get<T>();
}

}  // namespace

Json TrainSettings::to_json() const {
  Json model_json = {{"preset", model.preset}};
  put(model_json, "d_model", model.d_model);
  put(model_json, "nhead", model.nhead);
  put(model_json, "layers", model.layers);
  put(model_json, "dim_feedforward", model.dim_feedforward);
  put(model_json, "max_len", model.max_len);
  put(model_json, "dropout", model.dropout);
  put(model_json, "activation", model.activation);
  put(model_json, "positional", model.positional);
  put(model_json, "norm_first", model.norm_first);
  put(model_json, "tie_embeddings", model.tie_embeddings);
  return {{"run_dir", run_dir},
          {"data",
           {{"task", data.task},
            {"data_seed", data.data_seed},
            {"train_size", data.sizes.train},
            {"valid_size", data.sizes.valid},
            {"test_size", data.sizes.test},
            {"train_file", data.train_file},
            {"valid_file", data.valid_file},
            {"test_file", data.test_file},
            {"spm_vocab", data.spm_vocab},
            {"batch_tokens", data.batch_tokens}}},
          {"model", model_json},
          {"lr_factor", lr_factor},
          {"warmup", warmup},
          {"betas", {beta1, beta2}},
          {"eps", eps},
          {"label_smoothing", label_smoothing},
          {"clip_norm", clip_norm},
          {"accumulate", accumulate},
          {"steps", steps},
          {"max_minutes", max_minutes},
          {"valid_every", valid_every},
          {"valid_decode", valid_decode},
          {"best_metric", best_metric},
          {"stop_at", stop_at},
          {"seed", seed},
          {"threads", threads},
          {"embedding_init", embedding_init},
          {"precision", precision},
          {"max_bad_steps", max_bad_steps},
          {"check_nan", check_nan}};
}

TrainSettings TrainSettings::from_json(const Json& j) {
  TrainSettings s;
  try {
    take(j, "run_dir", s.run_dir);
    const Json& d = j.at("data");
    take(d, "task", s.data.task);
    take(d, "data_seed", s.data.data_seed);
    take(d, "train_size", s.data.sizes.train);
    take(d, "valid_size", s.data.sizes.valid);
    take(d, "test_size", s.data.sizes.test);
    take(d, "train_file", s.data.train_file);
    take(d, "valid_file", s.data.valid_file);
    take(d, "test_file", s.data.test_file);
    take(d, "spm_vocab", s.data.spm_vocab);
    take(d, "batch_tokens", s.data.batch_tokens);
    const Json& m = j.at("model");
    take(m, "preset", s.model.preset);
    take(m, "d_model", s.model.d_model);
    take(m, "nhead", s.model.nhead);
    take(m, "layers", s.model.layers);
    take(m, "dim_feedforward", s.model.dim_feedforward);
    take(m, "max_len", s.model.max_len);
    take(m, "dropout", s.model.dropout);
    take(m, "activation", s.model.activation);
    take(m, "positional", s.model.positional);
    take(m, "norm_first", s.model.norm_first);
    take(m, "tie_embeddings", s.model.tie_embeddings);
    take(j, "lr_factor", s.lr_factor);
    take(j, "warmup", s.warmup);
    if (j.contains("betas")) {
      s.beta1 = j.at("betas").at(0).get<double>();
      s.beta2 = j.at("betas").at(1).get<double>();
    }
    take(j, "eps", s.eps);
    take(j, "label_smoothing", s.label_smoothing);
    take(j, "clip_norm", s.clip_norm);
    take(j, "accumulate", s.accumulate);
    take(j, "steps", s.steps);
    take(j, "max_minutes", s.max_minutes);
    take(j, "valid_every", s.valid_every);
    take(j, "valid_decode", s.valid_decode);
    take(j, "best_metric", s.best_metric);
    take(j, "stop_at", s.stop_at);
    take(j, "seed", s.seed);
    take(j, "threads", s.threads);
    take(j, "embedding_init", s.embedding_init);
    take(j, "precision", s.precision);
    take(j, "max_bad_steps", s.max_bad_steps);
    take(j, "check_nan", s.check_nan);
  } catch (const Json::exception& e) {
    throw xgrad::Error(fmt::format("args.json: {}", xgrad::printable(e.what())));
  }
  s.validate();
  return s;
}

void TrainSettings::validate() const {
  auto fail = [](const std::string& problem) { throw xgrad::Error("training settings: " + problem); };
  auto positive = [&](const char* name, double value) {
    if (!(value > 0) || !std::isfinite(value)) fail(fmt::format("{} must be a positive number, not {}", name, value));
  };
  positive("batch_tokens", double(data.batch_tokens));
  positive("lr_factor", lr_factor);
  positive("warmup", double(warmup));
  positive("eps", eps);
  positive("accumulate", double(accumulate));
  positive("valid_every", double(valid_every));
  positive("max_bad_steps", double(max_bad_steps));
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
    fail(fmt::format("betas must be in [0, 1), not ({}, {})", beta1, beta2));
  }
  if (!(label_smoothing >= 0 && label_smoothing <= 1)) {
    fail(fmt::format("label_smoothing must be in [0, 1], not {}", label_smoothing));
  }
  if (!(clip_norm >= 0) || !std::isfinite(clip_norm)) fail(fmt::format("clip_norm must be >= 0, not {}", clip_norm));
  if (!(max_minutes >= 0) || !std::isfinite(max_minutes)) {
    fail(fmt::format("max_minutes must be >= 0, not {}", max_minutes));
  }
  if (!std::isfinite(stop_at)) fail(fmt::format("stop_at must be a finite number, not {}", stop_at));
  if (threads < 0 || threads > 4096) fail(fmt::format("threads must be in 0..4096, not {}", threads));
  if (precision != "fp32" && precision != "bf16") fail(fmt::format("precision must be fp32 or bf16, not '{}'",
                                                                   xgrad::printable(precision)));
  if (embedding_init != "scaled" && embedding_init != "unit") {
    fail(fmt::format("embedding_init must be scaled or unit, not '{}'", xgrad::printable(embedding_init)));
  }
  if (!best_metric.empty() && best_metric != "exact_match" && best_metric != "bleu" && best_metric != "chrf" &&
      best_metric != "loss") {
    fail(fmt::format("best_metric must be exact_match, bleu, chrf or loss, not '{}'", xgrad::printable(best_metric)));
  }
  if (data.spm_vocab > (std::size_t(1) << 24)) fail(fmt::format("spm_vocab {} is beyond 2^24", data.spm_vocab));
}

std::optional<TrainSettings> TrainSettings::load(const std::string& run_dir) {
  const std::string path = (std::filesystem::path(run_dir) / "args.json").string();
  std::ifstream in(path);
  if (!in) return std::nullopt;
  const Json j = Json::parse(in, nullptr, false);
  if (j.is_discarded()) throw xgrad::Error(fmt::format("'{}' is not valid JSON", path));
  return from_json(j);
}

void TrainSettings::save(const std::string& run_dir) const {
  const std::string path = (std::filesystem::path(run_dir) / "args.json").string();
  xgrad::utils::write_file_atomically(path, to_json().dump(2) + "\n", "seq2seq train");
}

}  // namespace seq2seq
