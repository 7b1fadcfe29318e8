// models::GPT: shapes, causality, cached generation against re-running the prefix (learned and
// rotary positions), seeded sampling, a toy repeating-sequence task, dropout, checkpoints, and
// bad input.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
using namespace xgrad::models;

namespace {

GPTConfig tiny(const std::string& positional) {
  GPTConfig c;
  c.vocab = 11, c.d_model = 32, c.nhead = 4, c.num_layers = 2, c.dim_feedforward = 64, c.max_len = 24;
  c.positional = positional;
  return c;
}

Indices random_ids(std::size_t b, std::size_t t, std::size_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> id(0, static_cast<int>(vocab) - 1);
  Indices ids = Indices::from_shape({b, t});
  for (std::size_t i = 0; i < ids.size(); ++i) ids.data()[i] = id(rng);
  return ids;
}

/// Greedy decoding without a cache: the whole prefix through forward() at every step.
Indices greedy_uncached(const GPT& model, const Indices& prompt, std::size_t n) {
  NoGradGuard no_grad;
  const std::size_t b = prompt.shape()[0], t0 = prompt.shape()[1], v = model.config().vocab;
  Indices seq = prompt;
  for (std::size_t step = 0; step < n; ++step) {
    const std::size_t t = t0 + step;
    const Tensor logits = model.forward(seq);  // (B, t, V)
    Indices longer = Indices::from_shape({b, t + 1});
    for (std::size_t i = 0; i < b; ++i) {
      for (std::size_t j = 0; j < t; ++j) longer(i, j) = seq(i, j);
      const float* row = logits.value().data() + (i * t + t - 1) * v;
      longer(i, t) = std::max_element(row, row + v) - row;
    }
    seq = longer;
  }
  return seq;
}

}  // namespace

TEST_CASE("GPT forward shape, tied output projection and causality") {
  for (const char* positional : {"learned", "rope"}) {
    CAPTURE(positional);
    Generator generator(3);
    GPT model(tiny(positional), generator);
    const Indices ids = random_ids(2, 7, 11, 1);
    const Tensor logits = model.forward(ids);
    CHECK(logits.shape() == Shape{2, 7, 11});
    // No separate output weight: the projection is the embedding table.
    for (const auto& [name, p] : model.named_parameters()) CHECK(name.find("head") == std::string::npos);
    // Changing the last token changes no earlier position's logits.
    Indices changed = ids;
    changed(0, 6) = (ids(0, 6) + 1) % 11;
    const Tensor other = model.forward(changed);
    double before = 0, last = 0;
    for (std::size_t j = 0; j < 7; ++j) {
      for (std::size_t k = 0; k < 11; ++k) {
        const double d = std::abs(logits.value()(0, j, k) - other.value()(0, j, k));
        (j < 6 ? before : last) = std::max(j < 6 ? before : last, d);
      }
    }
    CHECK(before == 0.0);
    CHECK(last > 1e-4);
  }
}

TEST_CASE("GPT cached forward equals the full forward") {
  for (const char* positional : {"learned", "rope"}) {
    CAPTURE(positional);
    Generator generator(4);
    GPT model(tiny(positional), generator);
    const Indices ids = random_ids(2, 9, 11, 2);
    const Tensor full = model.forward(ids);  // (2, 9, 11)
    KVCache cache;
    Indices first = Indices::from_shape({2, 5}), second = Indices::from_shape({2, 4});
    for (std::size_t i = 0; i < 2; ++i) {
      for (std::size_t j = 0; j < 9; ++j) (j < 5 ? first(i, j) : second(i, j - 5)) = ids(i, j);
    }
    model.forward(first, cache);
    const Tensor rest = model.forward(second, cache);  // (2, 4, 11)
    CHECK(cache.length == 9);
    double worst = 0;
    for (std::size_t i = 0; i < 2; ++i) {
      for (std::size_t j = 0; j < 4; ++j) {
        for (std::size_t k = 0; k < 11; ++k) worst = std::max(worst, double(std::abs(rest.value()(i, j, k) - full.value()(i, j + 5, k))));
      }
    }
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("GPT greedy generation with the cache equals re-running the prefix") {
  for (const char* positional : {"learned", "rope"}) {
    CAPTURE(positional);
    Generator generator(5);
    GPT model(tiny(positional), generator);
    const Indices prompt = random_ids(2, 3, 11, 3);
    const Indices cached = model.generate(prompt, 12);
    const Indices uncached = greedy_uncached(model, prompt, 12);
    REQUIRE(cached.shape() == uncached.shape());
    CHECK(cached == uncached);
    for (std::size_t j = 0; j < 3; ++j) CHECK(cached(1, j) == prompt(1, j));
  }
}

TEST_CASE("GPT sampling is reproducible with a seeded generator and respects top-k") {
  Generator init(6);
  GPT model(tiny("rope"), init);
  const Indices prompt = random_ids(1, 2, 11, 4);
  GenerateOptions options;
  options.temperature = 1.5f;
  Generator a(42), b(42);
  options.generator = &a;
  const Indices first = model.generate(prompt, 10, options);
  options.generator = &b;
  CHECK(model.generate(prompt, 10, options) == first);
  // Another seed draws other tokens (fixed seeds: deterministic).
  Generator c(43);
  options.generator = &c;
  CHECK(model.generate(prompt, 10, options) != first);
  // top_k = 1 is greedy whatever the temperature.
  options.top_k = 1;
  CHECK(model.generate(prompt, 10, options) == model.generate(prompt, 10));
}

TEST_CASE("GPT learns a repeating sequence well below chance") {
  // Sequences of the cycle 1 2 3 4 5 6 from a random phase: chance is log(11) = 2.40.
  for (const char* positional : {"learned", "rope"}) {
  CAPTURE(positional);
  GPTConfig c = tiny(positional);
  c.num_layers = 1;
  Generator generator(7);
  GPT model(c, generator);
  optim::Adam optimizer(model.parameters(), optim::AdamOptions(3e-3));
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> phase(0, 5);
  const auto start = std::chrono::steady_clock::now();
  float last = 0;
  for (int step = 0; step < 500; ++step) {
    Indices ids = Indices::from_shape({8, 12});
    for (std::size_t i = 0; i < 8; ++i) {
      const int p = phase(rng);
      for (std::size_t j = 0; j < 12; ++j) ids(i, j) = 1 + (p + j) % 6;
    }
    optimizer.zero_grad();
    Tensor loss = model.loss(ids);
    loss.backward();
    optimizer.step();
    last = loss.value().data()[0];
    if (last < 0.05f) break;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("GPT repeating sequence (%s): loss %.3f after %.2f s\n", positional, last, seconds);
  CHECK(last < 0.2f);
  Indices prompt = Indices::from_shape({1, 2});
  prompt(0, 0) = 3, prompt(0, 1) = 4;
  const Indices out = model.generate(prompt, 6);
  for (std::size_t j = 0; j < 8; ++j) CHECK(out(0, j) == 1 + (2 + j) % 6);
  }
}

TEST_CASE("GPT bad input throws") {
  GPT model(tiny("learned"));
  Indices bad = random_ids(1, 4, 11, 9);
  bad(0, 2) = 11;
  CHECK_THROWS_WITH_AS(model.forward(bad), doctest::Contains("outside the vocabulary"), Error);
  bad(0, 2) = -1;
  CHECK_THROWS_WITH_AS(model.forward(bad), doctest::Contains("outside the vocabulary"), Error);
  CHECK_THROWS_WITH_AS(model.forward(random_ids(1, 25, 11, 9)), doctest::Contains("exceed max_len 24"), Error);
  CHECK_THROWS_WITH_AS(model.generate(random_ids(1, 20, 11, 9), 5), doctest::Contains("exceed max_len 24"), Error);
  CHECK_THROWS_WITH_AS(model.loss(random_ids(2, 1, 11, 9)), doctest::Contains("T >= 2"), Error);
  KVCache cache;
  model.forward(random_ids(1, 20, 11, 9), cache);
  CHECK_THROWS_WITH_AS(model.forward(random_ids(1, 5, 11, 9), cache), doctest::Contains("exceed max_len"), Error);
  CHECK_THROWS_WITH_AS(model.forward(random_ids(2, 1, 11, 9), cache), doctest::Contains("batch 2"), Error);
  GPTConfig c = tiny("alibi");
  CHECK_THROWS_WITH_AS(GPT{c}, doctest::Contains("positional"), Error);
  c = tiny("learned");
  c.nhead = 5;
  CHECK_THROWS_WITH_AS(GPT{c}, doctest::Contains("multiple of nhead"), Error);
}

namespace {

/// max |a - b|.
double max_abs_difference(const Array& a, const Array& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a.data()[i] - b.data()[i])));
  return worst;
}

}  // namespace

TEST_CASE("GPT dropout: on the embeddings, attention weights and residual branches, only in training") {
  for (const std::string positional : {"learned", "rope"}) {
    CAPTURE(positional);
    GPTConfig c = tiny(positional);
    c.dropout = 0.2f;
    Generator generator(12);
    GPT noisy(c, generator);
    GPT plain(tiny(positional));
    plain.load_state_dict(noisy.state_dict());
    CHECK(noisy.parameter_count() == plain.parameter_count());  // dropout has no parameters
    const Indices ids = random_ids(2, 6, 11, 5);
    // Eval: dropout is the identity, and the model is the dropout-free one.
    noisy.eval();
    CHECK(max_abs_difference(noisy.forward(ids).value(), plain.forward(ids).value()) == 0.0);
    // Training: two passes draw two masks, and gradients flow through them.
    noisy.train();
    const Array first = noisy.forward(ids).value();
    CHECK(max_abs_difference(first, noisy.forward(ids).value()) > 1e-3);
    CHECK(max_abs_difference(first, plain.forward(ids).value()) > 1e-3);
    noisy.zero_grad();
    noisy.loss(ids).backward();
    CHECK(noisy.wte->weight.grad().defined());
    // Each of the three places is there, at the configured rate.
    CHECK(noisy.drop->p() == doctest::Approx(0.2));
    CHECK(noisy.blocks->at(0)->attn->options().dropout == doctest::Approx(0.2));
    CHECK(noisy.blocks->at(1)->dropout2->p() == doctest::Approx(0.2));
    CHECK(noisy.to_string().find("(dropout1): Dropout(p=0.2)") != std::string::npos);
    // A dropout-free model in training mode is its eval self.
    plain.train();
    const Array trained = plain.forward(ids).value();
    plain.eval();
    CHECK(max_abs_difference(trained, plain.forward(ids).value()) == 0.0);
  }
  GPTConfig c = tiny("learned");
  c.dropout = 1.f;
  CHECK_THROWS_WITH_AS(GPT{c}, doctest::Contains("dropout must be in [0, 1), got 1"), Error);
  c.dropout = -0.1f;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("dropout must be in [0, 1), got -0.1"), Error);
}

TEST_CASE("GPT configuration JSON round trip, and bad configurations") {
  GPTConfig c = tiny("rope");
  c.dropout = 0.1f;
  const std::string json = c.to_json();
  CHECK(json.find("\"dropout\":0.1") != std::string::npos);  // as Python writes 0.1
  CHECK(json.find("\"positional\":\"rope\"") != std::string::npos);
  const GPTConfig d = GPTConfig::from_json(json);
  CHECK(d.to_json() == json);
  CHECK(d.vocab == 11);
  CHECK(d.d_model == 32);
  CHECK(d.nhead == 4);
  CHECK(d.num_layers == 2);
  CHECK(d.dim_feedforward == 64);
  CHECK(d.max_len == 24);
  CHECK(GPTConfig::from_json(R"({"vocab": 5})").positional == "learned");  // absent keys keep defaults
  // Checkpoints written when GPT spelled rotary positions "rotary" still load, as "rope".
  CHECK(GPTConfig::from_json(R"({"vocab": 5, "positional": "rotary"})").positional == "rope");
  CHECK_THROWS_WITH_AS(GPTConfig::from_json(R"({"vocab": 5, "src_vocab": 5})"), doctest::Contains("unknown key \"src_vocab\""),
                       Error);
  CHECK_THROWS_WITH_AS(GPTConfig::from_json(R"({"vocab": -3})"), doctest::Contains("\"vocab\" must be a non-negative integer, got -3"),
                       Error);
  CHECK_THROWS_WITH_AS(GPTConfig::from_json(R"({"vocab": 5, "positional": 1})"),
                       doctest::Contains("\"positional\" must be a string, got 1"), Error);
  CHECK_THROWS_WITH_AS(GPTConfig::from_json(R"({"vocab": 5, "dropout": "high"})"),
                       doctest::Contains("\"dropout\" must be a number, got \"high\""), Error);
  CHECK_THROWS_WITH_AS(GPTConfig::from_json("[1]"), doctest::Contains("expected a JSON object, got [1]"), Error);
  CHECK_THROWS_WITH_AS(GPTConfig::from_json("{"), doctest::Contains("GPTConfig::from_json: not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(GPTConfig::from_json(R"({"vocab": 5, "positional": "sinusoidal"})"),
                       doctest::Contains("positional must be \"learned\" or \"rope\""), Error);
}

TEST_CASE("GPT save_model and load_gpt round trip") {
  for (const std::string positional : {"learned", "rope"}) {
    CAPTURE(positional);
    GPTConfig c = tiny(positional);
    c.dropout = 0.1f;
    Generator generator(13);
    GPT model(c, generator);
    model.eval();
    const TempDir dir("gpt");
    const std::string path = dir.file("roundtrip.safetensors");
    save_model(model, path);
    auto loaded = load_gpt(path);
    loaded->eval();
    CHECK(loaded->config().to_json() == c.to_json());
    CHECK(loaded->state_dict().size() == model.state_dict().size());
    const Indices ids = random_ids(2, 5, 11, 6);
    CHECK(max_abs_difference(loaded->forward(ids).value(), model.forward(ids).value()) == 0.0);
    CHECK(loaded->generate(ids, 4) == model.generate(ids, 4));
  }
  // A checkpoint without a GPT config, or with another model's, is refused by name.
  GPT model(tiny("learned"));
  const TempDir dir("gpt");
  const std::string bare = dir.file("noconfig.safetensors");
  nn::save(model, bare);
  CHECK_THROWS_WITH_AS(load_gpt(bare), doctest::Contains("has no \"config\" in its metadata"), Error);
  TransformerConfig tc = TransformerConfig::preset("tiny", 9, 9);
  tc.d_model = 16, tc.nhead = 2, tc.dim_feedforward = 24, tc.num_encoder_layers = 1, tc.num_decoder_layers = 1;
  const std::string seq2seq = dir.file("seq2seq.safetensors");
  save_model(Transformer(tc), seq2seq);
  CHECK_THROWS_WITH_AS(load_gpt(seq2seq), doctest::Contains("GPTConfig::from_json: unknown key"), Error);
}

namespace {

/// sum_t log p(tokens_t | prompt, tokens_<t) by the full forward (no cache): (T0 + N) at once.
double sequence_log_prob(const GPT& model, const Indices& prompt_row, const std::vector<std::int64_t>& tokens) {
  const std::size_t t0 = prompt_row.size(), n = tokens.size(), v = model.config().vocab;
  Indices ids = Indices::from_shape({1, t0 + n});
  for (std::size_t j = 0; j < t0; ++j) ids(0, j) = prompt_row(j);
  for (std::size_t j = 0; j < n; ++j) ids(0, t0 + j) = tokens[j];
  NoGradGuard no_grad;
  const Array logits = model.forward(ids).value();  // (1, T0 + N, V)
  double total = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const float* row = logits.data() + (t0 - 1 + j) * v;
    double z = 0;
    for (std::size_t k = 0; k < v; ++k) z += std::exp(double(row[k]));
    total += row[tokens[j]] - std::log(z);
  }
  return total;
}

}  // namespace

TEST_CASE("GPT beam search: the shared strategy over GPT's decoding step") {
  for (const char* positional : {"learned", "rope"}) {
    CAPTURE(positional);
    Generator init(8);
    GPT model(tiny(positional), init);
    model.eval();
    const Indices prompt = random_ids(3, 4, 11, 5);  // (3, 4)
    // Beam 1 is greedy.
    BeamSearchOptions one;
    one.beam_size = 1;
    one.length_penalty = 0.f;
    const auto greedy_beams = beam_search(model, prompt, -1, 6, one);
    const Indices greedy = model.generate(prompt, 6);
    REQUIRE(greedy_beams.size() == 3);
    for (std::size_t b = 0; b < 3; ++b) {
      REQUIRE(greedy_beams[b].size() == 1);
      for (std::size_t j = 0; j < 6; ++j) CHECK(greedy_beams[b][0].tokens[j] == greedy(b, 4 + j));
    }
    // Beam 4: every hypothesis scores what the full forward gives it, and the best is no worse
    // than greedy.
    BeamSearchOptions four;
    four.beam_size = 4;
    four.n_best = 4;
    four.length_penalty = 0.f;
    const auto beams = beam_search(model, prompt, -1, 6, four);
    for (std::size_t b = 0; b < 3; ++b) {
      CAPTURE(b);
      Indices row = Indices::from_shape({4});
      for (std::size_t j = 0; j < 4; ++j) row(j) = prompt(b, j);
      REQUIRE(beams[b].size() == 4);
      for (const Hypothesis& h : beams[b]) {
        REQUIRE(h.tokens.size() == 6);
        CHECK(h.log_prob == doctest::Approx(sequence_log_prob(model, row, h.tokens)).epsilon(1e-4));
      }
      CHECK(beams[b][0].log_prob >= greedy_beams[b][0].log_prob - 1e-5);
    }
  }
  Generator init(8);
  GPT model(tiny("learned"), init);
  CHECK_THROWS_WITH_AS(beam_search(model, random_ids(1, 20, 11, 9), -1, 5), doctest::Contains("exceed max_len 24"),
                       Error);
}
