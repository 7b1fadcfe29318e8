// models::Transformer against the reference PyTorch Seq2SeqTransformer: the fixtures written by
// tests/fixtures/make_transformer_fixtures.py hold tiny reference checkpoints and, for a padded
// batch, logits, loss and every parameter gradient. Also: names, padding, configuration JSON,
// checkpoints round trip, a toy copy task, and the presets' sizes.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>

#include <fmt/format.h>

#include <xgrad/nn/safetensors.hpp>
#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
using namespace xgrad::models;

namespace {

std::string fixture(const std::string& name) { return std::string(XGRAD_FIXTURES_DIR) + "/" + name; }

/// max |got - want| / max(1, |want|) (absolute below 1, relative above).
double max_error(const Array& got, const Array& want) {
  REQUIRE(shape_of(got) == shape_of(want));
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double w = want.data()[i];
    worst = std::max(worst, std::abs(got.data()[i] - w) / std::max(1.0, std::abs(w)));
  }
  return worst;
}

void check_parity(const std::string& name) {
  auto model = load_model(fixture("transformer_" + name + ".safetensors"));
  model->eval();
  const safetensors::File batch = safetensors::read(fixture("transformer_" + name + "_batch.safetensors"));
  const Indices& src = batch.get_indices("src");
  const Indices& tgt_in = batch.get_indices("tgt_in");
  const Indices& tgt_out = batch.get_indices("tgt_out");

  // Logits, absolutely.
  const Tensor logits = model->forward(src, tgt_in);
  const Array& want_logits = batch.get_tensor("logits");
  REQUIRE(shape_of(logits.value()) == shape_of(want_logits));
  double logits_error = 0;
  for (std::size_t i = 0; i < want_logits.size(); ++i) {
    logits_error = std::max(logits_error, double(std::abs(logits.value().data()[i] - want_logits.data()[i])));
  }
  CHECK(logits_error < 1e-4);

  // Loss and every parameter gradient, relatively.
  const Tensor loss = model->loss(src, tgt_in, tgt_out);
  const double want_loss = batch.get_tensor("loss").data()[0];
  const double loss_error = std::abs(loss.value().data()[0] - want_loss) / std::abs(want_loss);
  CHECK(loss_error < 1e-4);
  const double want_smoothed = batch.get_tensor("loss_smoothed").data()[0];
  const double smoothed = model->loss(src, tgt_in, tgt_out, 0.1f).value().data()[0];
  CHECK(std::abs(smoothed - want_smoothed) / want_smoothed < 1e-4);
  model->zero_grad();
  loss.backward();

  std::set<std::string> names, want_names;
  for (const auto& key : batch.keys()) {
    if (key.rfind("grad.", 0) == 0) want_names.insert(key.substr(5));
  }
  double grad_error = 0;
  std::string worst;
  for (const auto& named : model->named_parameters()) {
    const std::string& pname = named.first;  // (a structured binding cannot be captured in C++17)
    const Tensor& p = named.second;
    names.insert(pname);
    if (!want_names.count(pname)) continue;
    REQUIRE_MESSAGE(p.grad().defined(), pname);
    const double e = max_error(p.grad().value(), batch.get_tensor("grad." + pname));
    CHECK_MESSAGE(e < 1e-4, pname, " gradient error ", e);
    if (e > grad_error) grad_error = e, worst = pname;
  }
  CHECK(names == want_names);
  std::printf("transformer %s: max |logits error| %.3g, loss relative error %.3g, max gradient error %.3g (%s)\n",
              name.c_str(), logits_error, loss_error, grad_error, worst.c_str());
}

}  // namespace

TEST_CASE("post-LN relu Transformer matches the reference: logits, loss, every gradient") { check_parity("postln_relu"); }

TEST_CASE("pre-LN gelu Transformer matches the reference: logits, loss, every gradient") { check_parity("preln_gelu"); }

TEST_CASE("parameter names are the reference's") {
  auto model = load_model(fixture("transformer_postln_relu.safetensors"));
  std::set<std::string> names;
  for (const auto& [name, p] : model->named_parameters()) names.insert(name);
  for (const char* expected :
       {"src_embed.weight", "tgt_embed.weight", "generator.weight", "generator.bias",
        "transformer.encoder.layers.0.self_attn.in_proj_weight", "transformer.encoder.layers.1.self_attn.out_proj.bias",
        "transformer.encoder.layers.0.linear1.weight", "transformer.encoder.layers.0.linear2.bias",
        "transformer.encoder.layers.0.norm1.weight", "transformer.encoder.layers.0.norm2.bias",
        "transformer.encoder.norm.weight", "transformer.decoder.layers.1.multihead_attn.in_proj_bias",
        "transformer.decoder.layers.0.norm3.weight", "transformer.decoder.norm.bias"}) {
    CHECK_MESSAGE(names.count(expected) == 1, expected);
  }
  CHECK(model->state_dict().count("pe") == 0);
  CHECK(names.size() == 2 + 2 + 2 * 12 + 2 + 2 * 18 + 2);
}

TEST_CASE("tokens at padded positions do not change the logits at real positions") {
  auto model = load_model(fixture("transformer_preln_gelu.safetensors"));
  model->eval();
  Indices src = {{3, 4, 5, 6, 0, 0}, {7, 8, 0, 0, 0, 0}};
  Indices tgt = {{1, 5, 6, 0}, {1, 9, 0, 0}};
  const Array before = model->forward(src, tgt).value();  // (B, T, V)
  // Pad ids are what mark padding; changing what follows a sequence's end must change nothing
  // before it, in the source (masked keys) or the target (causal).
  Indices src2 = src, tgt2 = tgt;
  src2(0, 5) = 0;
  tgt2(1, 2) = 7;
  tgt2(1, 3) = 4;
  src2(1, 2) = 0;
  const Array after = model->forward(src2, tgt2).value();
  const std::size_t real_t[2] = {3, 2};
  for (std::size_t b = 0; b < 2; ++b) {
    for (std::size_t t = 0; t < real_t[b]; ++t) {
      for (std::size_t v = 0; v < 13; ++v) CHECK(after(b, t, v) == doctest::Approx(before(b, t, v)).epsilon(1e-5));
    }
  }
  // A longer padded tail in the source changes nothing either.
  Indices src3 = {{3, 4, 5, 6, 0, 0, 0, 0}, {7, 8, 0, 0, 0, 0, 0, 0}};
  const Array longer = model->forward(src3, tgt).value();
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t v = 0; v < 13; ++v) CHECK(longer(1, t, v) == doctest::Approx(before(1, t, v)).epsilon(1e-5));
  }
  // A real token does change them.
  Indices src4 = src;
  src4(1, 1) = 9;
  CHECK(model->forward(src4, tgt).value()(1, 0, 0) != doctest::Approx(before(1, 0, 0)).epsilon(1e-6));
}

TEST_CASE("encode then decode is forward; dropout acts only in training") {
  auto model = load_model(fixture("transformer_preln_gelu.safetensors"));
  model->eval();
  Indices src = {{3, 4, 5, 0}, {6, 7, 8, 9}}, tgt = {{1, 6, 0}, {1, 5, 4}};
  const Tensor memory = model->encode(src);  // (B, S, D)
  CHECK(shape_of(memory.value()) == Shape{2, 4, 16});
  const Tensor logits = model->projection->forward(model->decode(tgt, memory, model->padding_mask(src)));
  CHECK(max_error(logits.value(), model->forward(src, tgt).value()) < 1e-6);

  TransformerConfig c = model->config();
  c.dropout = 0.5f;
  Generator generator(4);
  Transformer noisy(c, generator);
  noisy.load_state_dict(model->state_dict());
  noisy.train();
  CHECK(max_error(noisy.forward(src, tgt).value(), noisy.forward(src, tgt).value()) > 1e-3);
  noisy.eval();
  CHECK(max_error(noisy.forward(src, tgt).value(), model->forward(src, tgt).value()) < 1e-6);
}

TEST_CASE("bad inputs throw, naming what was expected") {
  auto model = load_model(fixture("transformer_postln_relu.safetensors"));
  Indices src = {{3, 4, 5}}, tgt = {{1, 6}};
  CHECK_THROWS_WITH_AS(model->forward(Indices{3, 4, 5}, tgt), doctest::Contains("token ids must be (B, L), got [3]"), Error);
  CHECK_THROWS_WITH_AS(model->forward(src, Indices{{1, 6}, {1, 7}}), doctest::Contains("with the same B"), Error);
  CHECK_THROWS_WITH_AS(model->loss(src, tgt, Indices{{6, 2, 2}}), doctest::Contains("tgt_out [1,3] must have tgt_in's shape [1,2]"),
                       Error);
  Indices too_long = Indices::from_shape({1, 33});
  too_long.fill(3);
  CHECK_THROWS_WITH_AS(model->forward(too_long, tgt), doctest::Contains("sequence length 33 exceeds max_len 32"), Error);
  CHECK_THROWS_AS(model->forward(Indices{{3, 11}}, tgt), Error);  // id beyond the source vocabulary
  const TempDir dir("transformer");
  const std::string path = dir.file("noconfig.safetensors");
  nn::save(*model, path);
  CHECK_THROWS_WITH_AS(load_model(path), doctest::Contains("has no \"config\""), Error);
}

TEST_CASE("configuration JSON round trip, and bad configurations") {
  TransformerConfig c = TransformerConfig::preset("small", 100, 120);
  c.norm_first = true;
  c.activation = "gelu";
  c.pad_id = 3;
  const TransformerConfig d = TransformerConfig::from_json(c.to_json());
  CHECK(d.to_json() == c.to_json());
  CHECK(d.d_model == 256);
  CHECK(d.nhead == 8);
  CHECK(d.num_encoder_layers == 3);
  CHECK(d.dim_feedforward == 1024);
  CHECK(d.norm_first);
  CHECK(d.pad_id == 3);
  CHECK(c.to_json().find("\"dropout\":0.1,") != std::string::npos);  // as Python writes 0.1
  CHECK_THROWS_WITH_AS(TransformerConfig::from_json(R"({"src_vocab": 5, "tgt_vocab": 5, "d_model": 10, "nhead": 3})"),
                       doctest::Contains("d_model 10 must be a positive multiple of nhead 3"), Error);
  CHECK_THROWS_WITH_AS(TransformerConfig::from_json(R"({"src_vocab": 5, "tgt_vocab": 5, "colour": 1})"),
                       doctest::Contains("unknown key \"colour\""), Error);
  CHECK_THROWS_WITH_AS(TransformerConfig::from_json(R"({"src_vocab": "five"})"),
                       doctest::Contains("\"src_vocab\" must be a non-negative integer"), Error);
  CHECK_THROWS_WITH_AS(TransformerConfig::from_json("{"), doctest::Contains("not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(TransformerConfig::preset("huge", 5, 5), doctest::Contains("unknown preset \"huge\""), Error);
}

TEST_CASE("save_model and load_model round trip") {
  TransformerConfig c = TransformerConfig::preset("tiny", 9, 10);
  c.d_model = 16, c.nhead = 2, c.dim_feedforward = 24, c.num_encoder_layers = 1, c.num_decoder_layers = 1;
  Generator generator(7);
  Transformer model(c, generator);
  model.eval();
  const TempDir dir("transformer");
  const std::string path = dir.file("roundtrip.safetensors");
  save_model(model, path);
  auto loaded = load_model(path);
  loaded->eval();
  Indices src = {{3, 4, 5}}, tgt = {{1, 6}};
  CHECK(max_error(loaded->forward(src, tgt).value(), model.forward(src, tgt).value()) == 0.0);
  CHECK(loaded->config().to_json() == c.to_json());
}

TEST_CASE("initialisation: xavier uniform on the transformer's matrices, seeded") {
  TransformerConfig c = TransformerConfig::preset("tiny", 50, 60);
  Generator g1(3), g2(3);
  Transformer a(c, g1), b(c, g2);
  CHECK(max_error(a.transformer->encoder->layers->at(0)->linear1->weight.value(),
                  b.transformer->encoder->layers->at(0)->linear1->weight.value()) == 0.0);
  // linear1 (256, 64): U(-a, a), a = sqrt(6 / (64 + 256)); its variance is a^2 / 3.
  const Array& w = a.transformer->encoder->layers->at(1)->linear1->weight.value();
  const double bound = std::sqrt(6.0 / (64 + 256));
  double sum2 = 0, largest = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    sum2 += double(w.data()[i]) * w.data()[i];
    largest = std::max(largest, std::abs(double(w.data()[i])));
  }
  CHECK(largest <= bound);
  CHECK(largest > 0.95 * bound);
  CHECK(sum2 / w.size() == doctest::Approx(bound * bound / 3).epsilon(0.05));
  // Biases stay as their layers set them: attention's in_proj_bias is 0.
  const Array& bias = a.transformer->decoder->layers->at(0)->self_attn->in_proj_bias.value();
  CHECK(*std::max_element(bias.begin(), bias.end()) == 0.f);
}

TEST_CASE("learns a toy copy task") {
  // Copy 4 random symbols from {3..9}; chance cross-entropy is log(7) = 1.95 over symbols.
  TransformerConfig c;
  c.src_vocab = c.tgt_vocab = 10;
  c.d_model = 32, c.nhead = 4, c.num_encoder_layers = 1, c.num_decoder_layers = 1, c.dim_feedforward = 64;
  c.dropout = 0.f, c.max_len = 16;
  Generator generator(11);
  Transformer model(c, generator);
  optim::Adam optimizer(model.parameters(), optim::AdamOptions(3e-3));
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> symbol(3, 9);
  const auto start = std::chrono::steady_clock::now();
  float last = 0;
  for (int step = 0; step < 2000; ++step) {
    Indices src = Indices::from_shape({16, 4}), tgt_in = Indices::from_shape({16, 5}), tgt_out = Indices::from_shape({16, 5});
    for (std::size_t b = 0; b < 16; ++b) {
      tgt_in(b, 0) = 1;
      for (std::size_t t = 0; t < 4; ++t) src(b, t) = tgt_in(b, t + 1) = tgt_out(b, t) = symbol(rng);
      tgt_out(b, 4) = 2;
    }
    optimizer.zero_grad();
    Tensor loss = model.loss(src, tgt_in, tgt_out);
    loss.backward();
    optimizer.step();
    last = loss.value().data()[0];
    if (last < 0.05f) break;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("copy task: loss %.3f after %.2f s\n", last, seconds);
  CHECK(last < 0.2f);  // well below chance (1.95)
}

TEST_CASE("parameter counts of the presets") {
  // "big" (about 213M parameters untied) is left out to keep the test light.
  for (const char* name : {"tiny", "small", "base"}) {
    const TransformerConfig c = TransformerConfig::preset(name, 37000, 37000);
    Transformer model(c);
    std::printf("preset %-5s (vocab 37000, untied): %zu parameters\n", name, model.parameter_count());
    if (std::string(name) == "base") {
      // The encoder-decoder body: 44.1M, as the paper's base model without its embeddings.
      const std::size_t body = model.transformer->parameter_count();
      CHECK(body == 6 * (4 * 512 * 512 + 4 * 512 + 2 * 512 * 2048 + 2048 + 512 + 4 * 512) +
                        6 * (8 * 512 * 512 + 8 * 512 + 2 * 512 * 2048 + 2048 + 512 + 6 * 512) + 4 * 512);
      CHECK(model.parameter_count() == body + 3 * 37000 * 512 + 37000);
    }
  }
  // Tied: the paper's 65M (one shared 37000-token table, as its byte-pair vocabulary).
  TransformerConfig c = TransformerConfig::preset("base", 37000, 37000);
  c.tie_embeddings = true;
  Transformer tied(c);
  std::printf("preset base  (vocab 37000, tied):   %zu parameters\n", tied.parameter_count());
  CHECK(tied.parameter_count() == tied.transformer->parameter_count() + 37000 * 512 + 37000);
  CHECK(tied.parameter_count() > 60000000);
  CHECK(tied.parameter_count() < 66000000);
}

TEST_CASE("tied embeddings: one table, three names, and a round trip") {
  TransformerConfig c = TransformerConfig::preset("tiny", 12, 12);
  c.d_model = 16, c.nhead = 2, c.dim_feedforward = 24, c.num_encoder_layers = 1, c.num_decoder_layers = 1;
  c.tie_embeddings = true;
  Generator generator(9);
  Transformer model(c, generator);
  model.eval();
  CHECK(&model.src_embed->weight.value() == &model.tgt_embed->weight.value());
  CHECK(&model.src_embed->weight.value() == &model.projection->weight.value());
  const auto state = model.state_dict();
  CHECK(state.count("src_embed.weight") == 1);
  CHECK(state.count("tgt_embed.weight") == 1);
  CHECK(state.count("generator.weight") == 1);
  CHECK(c.to_json().find("tie_embeddings") != std::string::npos);
  TransformerConfig untied = c;
  untied.tie_embeddings = false;
  CHECK(untied.to_json().find("tie_embeddings") == std::string::npos);  // the reference's keys only
  CHECK(untied.to_json().find("positional") == std::string::npos);

  const TempDir dir("transformer");
  const std::string path = dir.file("tied.safetensors");
  save_model(model, path);
  auto loaded = load_model(path);
  loaded->eval();
  CHECK(loaded->config().tie_embeddings);
  CHECK(&loaded->src_embed->weight.value() == &loaded->projection->weight.value());
  Indices src = {{3, 4, 5}}, tgt = {{1, 6}};
  CHECK(max_error(loaded->forward(src, tgt).value(), model.forward(src, tgt).value()) == 0.0);

  // The shared table's gradient sums the three uses.
  Tensor loss = model.loss(src, tgt, Indices{{6, 2}});
  loss.backward();
  CHECK(model.src_embed->weight.grad().defined());
  c.tgt_vocab = 13;
  CHECK_THROWS_WITH_AS(Transformer{c}, doctest::Contains("tie_embeddings needs one vocabulary"), Error);
}

// --- learned and rotary positions -----------------------------------------------------------------

namespace {

std::shared_ptr<Transformer> seeded_model(const std::string& positional, bool tie = false, std::uint64_t seed = 13) {
  TransformerConfig c = TransformerConfig::preset("tiny", 13, 13);
  c.d_model = 16, c.nhead = 2, c.dim_feedforward = 24, c.num_encoder_layers = 2, c.num_decoder_layers = 2;
  c.dropout = 0.f, c.max_len = 12, c.norm_first = positional == "rope";
  c.positional = positional;
  c.tie_embeddings = tie;
  Generator generator(seed);
  auto model = std::make_shared<Transformer>(c, generator);
  model->eval();
  return model;
}

}  // namespace

TEST_CASE("learned positions: a table per side, N(0, 0.02^2), trained, counted and printed") {
  auto model = seeded_model("learned");
  auto sinusoidal = seeded_model("sinusoidal");
  const auto state = model->state_dict();
  REQUIRE(state.count("src_pos.weight") == 1);
  REQUIRE(state.count("tgt_pos.weight") == 1);
  CHECK(shape_of(state.at("src_pos.weight").value()) == Shape{12, 16});
  CHECK(model->positional == nullptr);
  CHECK(sinusoidal->src_pos == nullptr);
  CHECK(model->parameter_count() == sinusoidal->parameter_count() + 2 * 12 * 16);
  const Array& w = model->tgt_pos->weight.value();
  double sum2 = 0;
  for (std::size_t i = 0; i < w.size(); ++i) sum2 += double(w.data()[i]) * w.data()[i];
  CHECK(std::sqrt(sum2 / w.size()) == doctest::Approx(0.02).epsilon(0.15));
  CHECK(max_error(model->src_pos->weight.value(), w) > 0.0);  // two tables, drawn apart
  const std::string summary = model->to_string();
  CHECK(summary.find("(src_pos): LearnedPositionalEmbedding  [weight[12,16], 192 parameters]") != std::string::npos);
  CHECK(summary.find(fmt::format("total: {} trainable parameters", model->parameter_count())) != std::string::npos);

  // Trained: the loss reaches the rows of the positions used, and only those.
  Indices src = {{3, 4, 5, 0}}, tgt_in = {{1, 6, 7}}, tgt_out = {{6, 7, 2}};
  model->loss(src, tgt_in, tgt_out).backward();
  const Array& g = model->tgt_pos->weight.grad().value();  // (max_len, D)
  double used = 0, unused = 0;
  for (std::size_t p = 0; p < 12; ++p) {
    for (std::size_t d = 0; d < 16; ++d) (p < 3 ? used : unused) += std::abs(g(p, d));
  }
  CHECK(used > 0.0);
  CHECK(unused == 0.0);
  CHECK(model->src_pos->weight.grad().defined());
}

TEST_CASE("rope: no position parameters; self-attention rotates, cross-attention does not") {
  auto model = seeded_model("rope");
  auto sinusoidal = seeded_model("sinusoidal");
  CHECK(model->positional == nullptr);
  CHECK(model->src_pos == nullptr);
  CHECK(model->tgt_pos == nullptr);
  CHECK(model->parameter_count() == sinusoidal->parameter_count());
  std::set<std::string> names, sinusoidal_names;
  for (const auto& [name, p] : model->named_parameters()) names.insert(name);
  for (const auto& [name, p] : sinusoidal->named_parameters()) sinusoidal_names.insert(name);
  CHECK(names == sinusoidal_names);
  for (const auto& layer : *model->transformer->encoder->layers) CHECK(layer->self_attn->options().rotary);
  for (const auto& layer : *model->transformer->decoder->layers) {
    CHECK(layer->self_attn->options().rotary);
    CHECK_FALSE(layer->multihead_attn->options().rotary);
  }
  for (const auto& layer : *sinusoidal->transformer->decoder->layers) CHECK_FALSE(layer->self_attn->options().rotary);
  CHECK(model->to_string().find("rotary") != std::string::npos);
  CHECK(model->to_string().find("total: ") != std::string::npos);
}

TEST_CASE("every positional encoding makes the model see order") {
  // Without positions the encoder is permutation-equivariant and cross-attention sums over keys,
  // so swapping two source tokens would leave the logits as they were.
  for (const std::string positional : {"sinusoidal", "learned", "rope"}) {
    CAPTURE(positional);
    auto model = seeded_model(positional);
    Indices src = {{3, 4, 5, 6}}, swapped = {{4, 3, 5, 6}}, tgt = {{1, 7, 8}};
    NoGradGuard no_grad;
    CHECK(max_error(model->forward(swapped, tgt).value(), model->forward(src, tgt).value()) > 1e-4);
  }
}

TEST_CASE("padded positions never change real positions, for every positional encoding") {
  for (const std::string positional : {"sinusoidal", "learned", "rope"}) {
    for (const bool tie : {false, true}) {
      CAPTURE(positional);
      CAPTURE(tie);
      auto model = seeded_model(positional, tie);
      NoGradGuard no_grad;
      const Indices src = {{3, 4, 5, 6, 0, 0}, {7, 8, 0, 0, 0, 0}}, tgt = {{1, 5, 6, 0}, {1, 9, 0, 0}};
      const Array before = model->forward(src, tgt).value();  // (B, T, V)
      // A longer padded tail of the source, and other tokens after the target's end (causal).
      const Indices src2 = {{3, 4, 5, 6, 0, 0, 0, 0}, {7, 8, 0, 0, 0, 0, 0, 0}};
      const Indices tgt2 = {{1, 5, 6, 0}, {1, 9, 7, 4}};
      const Array after = model->forward(src2, tgt2).value();
      const std::size_t real_t[2] = {3, 2};
      double worst = 0;
      for (std::size_t b = 0; b < 2; ++b) {
        for (std::size_t t = 0; t < real_t[b]; ++t) {
          for (std::size_t v = 0; v < 13; ++v) worst = std::max(worst, double(std::abs(after(b, t, v) - before(b, t, v))));
        }
      }
      CHECK(worst < 1e-5);
      // Each row of the batch gives what it gives alone, unpadded.
      const Array alone = model->forward(Indices{{7, 8}}, Indices{{1, 9}}).value();  // (1, 2, V)
      for (std::size_t t = 0; t < 2; ++t) {
        for (std::size_t v = 0; v < 13; ++v) CHECK(alone(0, t, v) == doctest::Approx(before(1, t, v)).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("learned and rope: configuration JSON, checkpoints round trip, tied embeddings") {
  for (const std::string positional : {"learned", "rope"}) {
    for (const bool tie : {false, true}) {
      CAPTURE(positional);
      CAPTURE(tie);
      auto model = seeded_model(positional, tie);
      const std::string json = model->config().to_json();
      CHECK(json.find(fmt::format("\"positional\":\"{}\"", positional)) != std::string::npos);
      CHECK(TransformerConfig::from_json(json).positional == positional);
      const TempDir dir("transformer");
      const std::string path = dir.file("positions.safetensors");
      save_model(*model, path);
      auto loaded = load_model(path);
      loaded->eval();
      CHECK(loaded->config().to_json() == json);
      CHECK(loaded->named_parameters().size() == model->named_parameters().size());
      if (tie) CHECK(&loaded->tgt_embed->weight.value() == &loaded->projection->weight.value());
      Indices src = {{3, 4, 5, 0}}, tgt = {{1, 6, 7}};
      CHECK(max_error(loaded->forward(src, tgt).value(), model->forward(src, tgt).value()) == 0.0);
    }
  }
}

TEST_CASE("positional: unknown kinds and widths the encoding cannot use throw") {
  TransformerConfig c = TransformerConfig::preset("tiny", 9, 9);
  c.positional = "alibi";
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("positional must be \"sinusoidal\", \"learned\" or \"rope\", got \"alibi\""),
                       Error);
  CHECK_THROWS_WITH_AS(TransformerConfig::from_json(R"({"src_vocab": 5, "tgt_vocab": 5, "positional": "relative"})"),
                       doctest::Contains("got \"relative\""), Error);
  CHECK_THROWS_WITH_AS(TransformerConfig::from_json(R"({"src_vocab": 5, "tgt_vocab": 5, "positional": 2})"),
                       doctest::Contains("\"positional\" must be a string, got 2"), Error);
  // RoPE rotates pairs of a head's features (even head width), the sinusoidal table pairs
  // sin and cos (even d_model), a learned table needs neither.
  c.d_model = 6, c.nhead = 2;
  c.positional = "rope";
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("head width d_model / nhead = 3 must be even"), Error);
  c.positional = "sinusoidal";
  CHECK_NOTHROW(c.validate());
  c.d_model = 9, c.nhead = 3;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("d_model 9 must be even for the sinusoidal table"), Error);
  c.positional = "learned";
  CHECK_NOTHROW(c.validate());
  // Positions beyond max_len, from the start or from an offset.
  auto model = seeded_model("learned");
  CHECK_THROWS_WITH_AS(model->embed_target(Indices{{1, 2, 3}}, 10), doctest::Contains("positions 10 to 12 exceed max_len 12"),
                       Error);
  Indices long_src = Indices::from_shape({1, 13});
  long_src.fill(3);
  CHECK_THROWS_WITH_AS(seeded_model("rope")->encode(long_src), doctest::Contains("sequence length 13 exceeds max_len 12"), Error);
}

TEST_CASE("rescale_embedding_init draws the tables from N(0, 1/D), the tied one once") {
  for (const bool tied : {false, true}) {
    CAPTURE(tied);
    TransformerConfig c = TransformerConfig::preset("tiny", 500, 500);
    c.tie_embeddings = tied;
    Generator generator(7);
    Transformer model(c, generator);
    const Array before = model.tgt_embed->weight.value();
    Generator redraw(8);
    model.rescale_embedding_init(redraw);
    for (const Tensor& table : {model.src_embed->weight, model.tgt_embed->weight}) {
      const Array& w = table.value();
      double sum = 0, squares = 0;
      for (const float v : w) sum += v, squares += double(v) * v;
      const double n = double(w.size()), mean = sum / n;
      CHECK(std::abs(mean) < 0.01);
      CHECK(std::sqrt(squares / n - mean * mean) == doctest::Approx(1.0 / std::sqrt(64.0)).epsilon(0.03));
    }
    CHECK(model.tgt_embed->weight.value() != before);
    // Tied: one table, drawn once, so the next draw of the generator is the one after it.
    Generator reference(8);
    for (std::size_t i = 0; i < 500 * 64 * (tied ? 1 : 2); ++i) reference.normal();
    CHECK(redraw.normal() == reference.normal());
  }
}
