// models::EncoderClassifier: shapes, padding never changes the logits, a toy "contains token"
// task, and bad input.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
using namespace xgrad::models;

namespace {

EncoderClassifierConfig tiny() {
  EncoderClassifierConfig c;
  c.vocab = 8, c.num_classes = 2, c.d_model = 32, c.nhead = 4, c.num_layers = 1, c.dim_feedforward = 64, c.max_len = 16;
  return c;
}

}  // namespace

TEST_CASE("EncoderClassifier forward shape and parameter names") {
  Generator generator(1);
  EncoderClassifier model(tiny(), generator);
  Indices ids = Indices::from_shape({3, 5});
  for (std::size_t i = 0; i < ids.size(); ++i) ids.data()[i] = 1 + i % 7;
  CHECK(model.forward(ids).shape() == Shape{3, 2});
  bool found = false;
  for (const auto& [name, p] : model.named_parameters()) found |= name == "layers.0.self_attn.in_proj_weight";
  CHECK(found);
}

TEST_CASE("EncoderClassifier: padding never changes the logits") {
  Generator generator(2);
  EncoderClassifier model(tiny(), generator);
  // Alone and unpadded.
  Indices alone = Indices::from_shape({1, 4});
  alone(0, 0) = 3, alone(0, 1) = 5, alone(0, 2) = 1, alone(0, 3) = 7;
  const Array want = model.forward(alone).value();  // (1, 2)
  // In a batch with a longer sequence, padded at the end, and again with more padding.
  for (std::size_t length : {6, 9}) {
    CAPTURE(length);
    Indices batch = Indices::from_shape({2, length});
    for (std::size_t j = 0; j < length; ++j) {
      batch(0, j) = 2 + j % 5;
      batch(1, j) = j < 4 ? alone(0, j) : 0;
    }
    const Tensor logits = model.forward(batch);
    for (std::size_t k = 0; k < 2; ++k) CHECK(logits.value()(1, k) == doctest::Approx(want(0, k)).epsilon(1e-5));
  }
  // The gradient of the padded batch's loss gives no gradient to the pad token's embedding row.
  Indices batch = Indices::from_shape({1, 6});
  for (std::size_t j = 0; j < 6; ++j) batch(0, j) = j < 4 ? alone(0, j) : 0;
  Indices label = Indices::from_shape({1});
  label(0) = 1;
  model.zero_grad();
  model.loss(batch, label).backward();
  const Array grad = model.embed->weight.grad().value();
  double pad_row = 0, used_row = 0;
  for (std::size_t d = 0; d < 32; ++d) pad_row += std::abs(grad(0, d)), used_row += std::abs(grad(3, d));
  CHECK(pad_row == 0.0);
  CHECK(used_row > 0.0);
}

TEST_CASE("EncoderClassifier learns whether a sequence contains a token") {
  // Class 1 iff token 3 occurs; half of each batch has it. Chance is log(2) = 0.693.
  Generator generator(3);
  EncoderClassifier model(tiny(), generator);
  optim::Adam optimizer(model.parameters(), optim::AdamOptions(3e-3));
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> length(3, 10), other(0, 5), coin(0, 1);
  const int others[] = {1, 2, 4, 5, 6, 7};
  const auto start = std::chrono::steady_clock::now();
  float last = 0;
  for (int step = 0; step < 600; ++step) {
    Indices ids = Indices::from_shape({16, 10});
    Indices labels = Indices::from_shape({16});
    for (std::size_t i = 0; i < 16; ++i) {
      const std::size_t n = length(rng);
      for (std::size_t j = 0; j < 10; ++j) ids(i, j) = j < n ? others[other(rng)] : 0;
      labels(i) = coin(rng);
      if (labels(i) == 1) ids(i, std::uniform_int_distribution<std::size_t>(0, n - 1)(rng)) = 3;
    }
    optimizer.zero_grad();
    Tensor loss = model.loss(ids, labels);
    loss.backward();
    optimizer.step();
    last = loss.value().data()[0];
    if (step > 50 && last < 0.02f) break;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("EncoderClassifier contains-token: loss %.3f after %.2f s\n", last, seconds);
  CHECK(last < 0.15f);
}

TEST_CASE("EncoderClassifier bad input throws") {
  EncoderClassifier model(tiny());
  Indices ids = Indices::from_shape({2, 4});
  for (std::size_t i = 0; i < ids.size(); ++i) ids.data()[i] = 1 + i % 7;
  ids(1, 2) = 8;
  CHECK_THROWS_WITH_AS(model.forward(ids), doctest::Contains("outside the vocabulary [0, 8)"), Error);
  ids(1, 2) = -3;
  CHECK_THROWS_WITH_AS(model.forward(ids), doctest::Contains("outside the vocabulary"), Error);
  Indices longer = Indices::from_shape({1, 17});
  longer.fill(1);
  CHECK_THROWS_WITH_AS(model.forward(longer), doctest::Contains("exceeds max_len 16"), Error);
  Indices pads = Indices::from_shape({2, 3});
  pads.fill(1);
  pads(1, 0) = pads(1, 1) = pads(1, 2) = 0;
  CHECK_THROWS_WITH_AS(model.forward(pads), doctest::Contains("only padding"), Error);
  Indices labels = Indices::from_shape({3});
  labels.fill(0);
  CHECK_THROWS_WITH_AS(model.loss(longer, labels), doctest::Contains("labels"), Error);
  EncoderClassifierConfig c = tiny();
  c.pad_id = 8;
  CHECK_THROWS_WITH_AS(EncoderClassifier{c}, doctest::Contains("pad_id"), Error);
}

TEST_CASE("EncoderClassifier config JSON round trip, and save/load as every model") {
  EncoderClassifierConfig c = tiny();
  c.dropout = 0.1f;
  c.activation = "relu";
  const std::string json = c.to_json();
  CHECK(json.find("\"dropout\":0.1") != std::string::npos);
  CHECK(EncoderClassifierConfig::from_json(json).to_json() == json);
  CHECK(EncoderClassifierConfig::from_json(R"({"vocab": 7})").num_classes == 2);  // defaults kept
  CHECK_THROWS_WITH_AS(EncoderClassifierConfig::from_json(R"({"vocab": 7, "colour": 1})"),
                       doctest::Contains("EncoderClassifierConfig::from_json: unknown key \"colour\""), Error);
  CHECK_THROWS_WITH_AS(EncoderClassifierConfig::from_json(R"({"vocab": 7, "norm_first": 1})"),
                       doctest::Contains("\"norm_first\" must be a boolean, got 1"), Error);

  Generator generator(5);
  EncoderClassifier model(c, generator);
  model.eval();
  const TempDir dir("encoder_classifier");
  const std::string path = dir.file("classifier.safetensors");
  models::save(model, path);
  const auto loaded = models::load<EncoderClassifier>(path);
  loaded->eval();
  CHECK(loaded->config().to_json() == json);
  Indices ids{{3, 4, 5, 0}, {6, 7, 0, 0}};
  CHECK(loaded->forward(ids).value() == model.forward(ids).value());
  // A checkpoint of another model is refused by its config's keys.
  GPTConfig g;
  g.vocab = 11;
  models::save(GPT(g), dir.file("gpt.safetensors"));
  CHECK_THROWS_WITH_AS(models::load<EncoderClassifier>(dir.file("gpt.safetensors")),
                       doctest::Contains("EncoderClassifierConfig::from_json: unknown key"), Error);
}
