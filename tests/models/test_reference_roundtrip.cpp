// A checkpoint written by xgrad loads in the reference PyTorch model and gives xgrad's logits.
// tests/fixtures/make_roundtrip_fixture.py loaded the committed xgrad_saved_tiny*.safetensors into
// the reference with a strict load_state_dict and wrote its logits on a fixed padded batch. Here
// the same seeded models are rebuilt and saved: the bytes must be the committed checkpoints' (so
// the proof is about what xgrad writes today), and xgrad's logits must be the reference's.
//
// XGRAD_UPDATE_FIXTURES=1 in the environment rewrites the checkpoints instead and fails (then
// rerun the script, run the test again without the variable, and commit both).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <xgrad/nn/safetensors.hpp>
#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
using namespace xgrad::models;

namespace {

std::string fixture(const std::string& name) { return std::string(XGRAD_FIXTURES_DIR) + "/" + name; }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Tiny sizes; everything else as given.
TransformerConfig tiny(TransformerConfig c) {
  c.d_model = 16, c.nhead = 2, c.num_encoder_layers = 2, c.num_decoder_layers = 2, c.dim_feedforward = 32;
  return c;
}

/// The default configuration (post-LN, relu, sinusoidal, dropout 0.1, max_len 512, untied).
TransformerConfig default_config() {
  TransformerConfig c;
  c.src_vocab = 11, c.tgt_vocab = 13;
  return tiny(c);
}

TransformerConfig preln_gelu_tied_config() {
  TransformerConfig c;
  c.src_vocab = c.tgt_vocab = 13;
  c.norm_first = true, c.activation = "gelu", c.tie_embeddings = true;
  return tiny(c);
}

void check_roundtrip(const std::string& name, const TransformerConfig& config, std::uint64_t seed) {
  Generator generator(seed);
  Transformer model(config, generator);
  model.eval();
  const std::string committed = fixture(name + ".safetensors");
  if (std::getenv("XGRAD_UPDATE_FIXTURES")) {
    // A run that rewrites the checkpoints checks nothing (the bytes would equal themselves): it
    // fails, so that it can never stand in for a passing test.
    save_model(model, committed);
    FAIL_CHECK("rewrote ", committed, " and checked nothing: run tests/fixtures/make_roundtrip_fixture.py, "
               "then this test again without XGRAD_UPDATE_FIXTURES");
    return;
  }
  // What xgrad writes today is the file the reference read.
  const TempDir dir("reference_roundtrip");
  const std::string path = dir.file(name + ".safetensors");
  save_model(model, path);
  const std::string saved = read_bytes(path);
  CHECK_MESSAGE(saved == read_bytes(committed), "save_model no longer writes ", committed,
                " byte for byte: if on purpose, see this file's header");

  const safetensors::File reference = safetensors::read(fixture(name + "_reference.safetensors"));
  CHECK(reference.metadata().at("checkpoint") == name + ".safetensors");
  const Indices& src = reference.get_indices("src");
  const Indices& tgt_in = reference.get_indices("tgt_in");
  const Array& want = reference.get_tensor("logits");  // (B, T, V)
  NoGradGuard no_grad;
  const Array got = model.forward(src, tgt_in).value();
  REQUIRE(shape_of(got) == shape_of(want));
  REQUIRE(shape_of(got) == Shape{3, 6, 13});
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got.data()[i] - want.data()[i])));
  CHECK(worst < 1e-4);
  // And the committed checkpoint, read back by xgrad, is the same model.
  auto loaded = load_model(committed);
  loaded->eval();
  CHECK(loaded->forward(src, tgt_in).value() == got);
  std::printf("%s: max |xgrad - reference| logits %.3g\n", name.c_str(), worst);
}

}  // namespace

TEST_CASE("an xgrad checkpoint of the default configuration gives the reference's logits") {
  check_roundtrip("xgrad_saved_tiny", default_config(), 3001);
}

TEST_CASE("an xgrad checkpoint of a pre-LN gelu model with tied embeddings gives the reference's logits") {
  check_roundtrip("xgrad_saved_tiny_preln_gelu_tied", preln_gelu_tied_config(), 3002);
}

TEST_CASE("the two checkpoints are what their names say") {
  const TransformerConfig a = TransformerConfig::from_json(
      safetensors::read(fixture("xgrad_saved_tiny.safetensors")).metadata().at("config"));
  CHECK(a.to_json() == default_config().to_json());
  CHECK_FALSE(a.norm_first);
  CHECK(a.activation == "relu");
  CHECK(a.positional == "sinusoidal");
  const TransformerConfig b = TransformerConfig::from_json(
      safetensors::read(fixture("xgrad_saved_tiny_preln_gelu_tied.safetensors")).metadata().at("config"));
  CHECK(b.norm_first);
  CHECK(b.activation == "gelu");
  CHECK(b.tie_embeddings);
}
