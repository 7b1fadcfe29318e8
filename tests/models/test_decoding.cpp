// models::greedy_decode and sample_decode on random (untrained, seeded) tiny Transformers:
// each emitted token is the argmax of the full forward pass on the prefix, padded sources decode
// as alone, the KV cache gives what re-feeding gives (sinusoidal, learned and rotary positions,
// tied or not), top-k 1 sampling is greedy, and bad inputs throw.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>
#include <memory>

#include <omp.h>

#include <xgrad/kernels/linear.hpp>
#include <xgrad/kernels/team.hpp>
#include <xgrad/models/decoding.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
using namespace xgrad::models;

namespace {

constexpr std::int64_t kBos = 1, kEos = 2;

std::shared_ptr<Transformer> tiny_model(bool norm_first, std::uint64_t seed = 7) {
  TransformerConfig c = TransformerConfig::preset("tiny", 11, 13);
  c.norm_first = norm_first;
  c.activation = norm_first ? "gelu" : "relu";
  c.dropout = 0.f;
  c.max_len = 24;
  Generator generator(seed);
  auto model = std::make_shared<Transformer>(c, generator);
  model->eval();
  return model;
}

/// A positional encoding, layer norm placement and embedding tying to decode with.
struct Variant {
  const char* positional;
  bool norm_first;
  bool tie;
};
const Variant kVariants[] = {{"sinusoidal", false, false}, {"sinusoidal", true, false}, {"learned", false, false},
                             {"rope", true, false},        {"learned", true, true},      {"rope", false, true}};

std::shared_ptr<Transformer> tiny_model(const Variant& variant, std::uint64_t seed) {
  TransformerConfig c = TransformerConfig::preset("tiny", 13, 13);
  c.norm_first = variant.norm_first;
  c.activation = variant.norm_first ? "gelu" : "relu";
  c.positional = variant.positional;
  c.tie_embeddings = variant.tie;
  c.dropout = 0.f;
  c.max_len = 24;
  Generator generator(seed);
  auto model = std::make_shared<Transformer>(c, generator);
  if (model->tgt_pos) {
    // Learned tables start at N(0, 0.02^2); at N(0, 1), as the sinusoidal table's scale, a
    // position taken at the wrong offset shows plainly in the logits.
    model->src_pos->weight.mutable_value() *= 50.f;
    model->tgt_pos->weight.mutable_value() *= 50.f;
  }
  model->eval();
  return model;
}

/// Padded batch of three sources of lengths 5, 3, 1.
Indices padded_sources() { return Indices{{3, 4, 5, 6, 7}, {8, 9, 10, 0, 0}, {5, 0, 0, 0, 0}}; }

/// Checks that out (B, L) is what re-running the whole model on each prefix picks by argmax.
void check_greedy_against_forward(const Transformer& model, const Indices& src, const Indices& out) {
  const std::size_t batch = out.shape()[0], len = out.shape()[1], vocab = model.config().tgt_vocab;
  Indices tgt_in = Indices::from_shape({batch, len});  // (B, L): BOS then out shifted right
  for (std::size_t b = 0; b < batch; ++b) {
    tgt_in(b, 0) = kBos;
    for (std::size_t t = 1; t < len; ++t) tgt_in(b, t) = out(b, t - 1);
  }
  NoGradGuard no_grad;
  const Array logits = model.forward(src, tgt_in).value();  // (B, L, V)
  for (std::size_t b = 0; b < batch; ++b) {
    bool ended = false;
    for (std::size_t t = 0; t < len; ++t) {
      if (ended) {
        CHECK(out(b, t) == model.config().pad_id);
        continue;
      }
      const float* row = &logits(b, t, 0);
      CHECK(out(b, t) == std::max_element(row, row + vocab) - row);
      ended = out(b, t) == kEos;
    }
  }
}

/// sum_t log p(tokens_t | tokens_<t, source) by running the whole model once.
double log_prob_of(const Transformer& model, const Indices& source, const std::vector<std::int64_t>& tokens) {
  Indices tgt_in = Indices::from_shape({1, tokens.size()});
  tgt_in(0, 0) = kBos;
  for (std::size_t t = 1; t < tokens.size(); ++t) tgt_in(0, t) = tokens[t - 1];
  NoGradGuard no_grad;
  const Array logits = model.forward(source, tgt_in).value();  // (1, L, V)
  double total = 0;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    double z = 0;
    for (std::size_t v = 0; v < model.config().tgt_vocab; ++v) z += std::exp(double(logits(0, t, v)));
    total += logits(0, t, tokens[t]) - std::log(z);
  }
  return total;
}

}  // namespace

TEST_CASE("greedy_decode picks the argmax of the full forward pass; padded rows decode as alone; every positional") {
  for (const Variant& variant : kVariants) {
    const std::string positional = variant.positional;
    CAPTURE(positional);
    CAPTURE(variant.norm_first);
    CAPTURE(variant.tie);
    auto model = tiny_model(variant, 7);
    const Indices src = padded_sources();
    const Indices out = greedy_decode(*model, src, kBos, kEos, 12);
    REQUIRE(out.dimension() == 2);
    CHECK(out.shape()[0] == 3);
    CHECK(out.shape()[1] >= 1);
    CHECK(out.shape()[1] <= 12);
    check_greedy_against_forward(*model, src, out);
    // Each padded row decodes as it does alone.
    for (std::size_t b = 0; b < 3; ++b) {
      const std::size_t s = b == 0 ? 5 : b == 1 ? 3 : 1;
      Indices alone = Indices::from_shape({1, s});
      for (std::size_t j = 0; j < s; ++j) alone(0, j) = src(b, j);
      const Indices single = greedy_decode(*model, alone, kBos, kEos, 12);
      for (std::size_t t = 0; t < single.shape()[1]; ++t) CHECK(single(0, t) == out(b, t));
    }
  }
}

TEST_CASE("greedy_decode stops rows at EOS and pads after it") {
  auto model = tiny_model(false, 3);
  const Indices src = padded_sources();
  // Take the token greedy decoding emits first in row 0 as EOS: that row ends after one step.
  const Indices first = greedy_decode(*model, src, kBos, kEos, 1);
  REQUIRE(first.shape()[1] == 1);
  const std::int64_t eos = first(0, 0);
  const Indices out = greedy_decode(*model, src, kBos, eos, 10);
  CHECK(out(0, 0) == eos);
  for (std::size_t t = 1; t < out.shape()[1]; ++t) CHECK(out(0, t) == model->config().pad_id);
  // All rows ended before max_len, or some row ran to it.
  bool all_ended = true;
  for (std::size_t b = 0; b < 3; ++b) {
    all_ended = all_ended && std::find(&out(b, 0), &out(b, 0) + out.shape()[1], eos) != &out(b, 0) + out.shape()[1];
  }
  CHECK((all_ended || out.shape()[1] == 10));
}

TEST_CASE("sample_decode: top-k 1 is greedy; seeded; tokens in the vocabulary") {
  auto model = tiny_model(true);
  const Indices src = padded_sources();
  const Indices greedy = greedy_decode(*model, src, kBos, kEos, 12);
  Generator g1(11);
  CHECK(sample_decode(*model, src, kBos, kEos, 12, 0.7f, 1, g1) == greedy);
  Generator a(5), b(5);
  const Indices sa = sample_decode(*model, src, kBos, kEos, 12, 1.5f, 0, a);
  const Indices sb = sample_decode(*model, src, kBos, kEos, 12, 1.5f, 0, b);
  CHECK(sa == sb);
  for (std::size_t i = 0; i < sa.size(); ++i) CHECK((sa.data()[i] >= 0 && sa.data()[i] < 13));
  // With the whole vocabulary at a high temperature, some seed must leave the greedy path.
  bool differs = false;
  for (std::uint64_t seed = 0; seed < 5 && !differs; ++seed) {
    Generator g(seed);
    differs = sample_decode(*model, src, kBos, kEos, 12, 5.f, 0, g) != greedy;
  }
  CHECK(differs);
  // Top-k 3 only ever picks one of the 3 largest logits: checked on the first step.
  Generator g3(9);
  const Indices s3 = sample_decode(*model, src, kBos, kEos, 1, 1.f, 3, g3);
  NoGradGuard no_grad;
  Indices bos = Indices::from_shape({3, 1});
  std::fill(bos.begin(), bos.end(), kBos);
  const Array logits = model->forward(src, bos).value();  // (B, 1, V)
  for (std::size_t r = 0; r < 3; ++r) {
    std::vector<float> row(&logits(r, 0, 0), &logits(r, 0, 0) + 13);
    std::vector<float> sorted = row;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    CHECK(row[s3(r, 0)] >= sorted[2]);
  }
}

TEST_CASE("decoding bad inputs throw xgrad::Error") {
  auto model = tiny_model(false);
  CHECK_THROWS_WITH_AS(greedy_decode(*model, Indices{{3, 11}}, kBos, kEos, 5),
                       doctest::Contains("source id 11 at flat index 1 is outside the vocabulary [0, 11)"), Error);
  CHECK_THROWS_WITH_AS(greedy_decode(*model, Indices{{3, -1}}, kBos, kEos, 5), doctest::Contains("source id -1"), Error);
  CHECK_THROWS_WITH_AS(greedy_decode(*model, Indices{{3, 4}}, 13, kEos, 5),
                       doctest::Contains("bos/eos id 13 is outside the target vocabulary [0, 13)"), Error);
  CHECK_THROWS_WITH_AS(greedy_decode(*model, Indices::from_shape({2, 0}), kBos, kEos, 5),
                       doctest::Contains("src [2,0] is empty"), Error);
  CHECK_THROWS_WITH_AS(greedy_decode(*model, Indices::from_shape({2, 30}), kBos, kEos, 5),
                       doctest::Contains("source length 30 exceeds the model's max_len 24"), Error);
  CHECK_THROWS_WITH_AS(greedy_decode(*model, Indices{{3, 4}}, kBos, kEos, 25),
                       doctest::Contains("max_len 25 must be in [1, 24]"), Error);
  CHECK_THROWS_WITH_AS(greedy_decode(*model, Indices{3, 4}, kBos, kEos, 5), doctest::Contains("src must be (B, S)"), Error);
  Generator g;
  CHECK_THROWS_WITH_AS(sample_decode(*model, Indices{{3, 4}}, kBos, kEos, 5, 0.f, 0, g),
                       doctest::Contains("temperature must be finite and > 0"), Error);
}

TEST_CASE("KV-cache decoding gives the tokens and logits of re-feeding, for every positional encoding") {
  for (const Variant& variant : kVariants) {
    const std::string positional = variant.positional;
    CAPTURE(positional);
    CAPTURE(variant.norm_first);
    CAPTURE(variant.tie);
    auto model = tiny_model(variant, 21);
    const Indices src = padded_sources();
    CHECK(greedy_decode(*model, src, kBos, kEos, 16, true) == greedy_decode(*model, src, kBos, kEos, 16, false));
    // More rows than the skinny kernels take: the steps' products on packed weights.
    static_assert(xgrad::kernels::kSkinnyRows < 12, "12 rows must take the packed weights");
    Indices many = Indices::from_shape({12, src.shape()[1]});  // (12, S): the sources four times
    for (std::size_t r = 0; r < 12; ++r) {
      for (std::size_t c = 0; c < src.shape()[1]; ++c) many(r, c) = src(r % 3, c);
    }
    const Indices many_out = greedy_decode(*model, many, kBos, kEos, 16, true);
    CHECK(many_out == greedy_decode(*model, many, kBos, kEos, 16, false));
    check_greedy_against_forward(*model, many, many_out);
    Generator a(4), b(4);
    CHECK(sample_decode(*model, src, kBos, kEos, 16, 1.f, 5, a, true) ==
          sample_decode(*model, src, kBos, kEos, 16, 1.f, 5, b, false));
    // Logits step by step against the full decoder, including a pad_id fed mid-sequence.
    NoGradGuard no_grad;
    const Indices tgt = {{kBos, 5, 6, 0, 7}, {kBos, 9, 3, 4, 4}, {kBos, 0, 8, 8, 2}};  // (B, T)
    const Array full = model->forward(src, tgt).value();                               // (B, T, V)
    IncrementalDecoder decoder(*model, model->encode(src), model->padding_mask(src));
    double worst = 0;
    for (std::size_t t = 0; t < 5; ++t) {
      const Array logits = decoder.step(Indices{tgt(0, t), tgt(1, t), tgt(2, t)});  // (B, V)
      for (std::size_t r = 0; r < 3; ++r) {
        for (std::size_t v = 0; v < 13; ++v) worst = std::max(worst, double(std::abs(logits(r, v) - full(r, t, v))));
      }
    }
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("beam_search: beam 1 is greedy; scores sorted; n-best size; length penalty") {
  for (const Variant& variant : kVariants) {
    const std::string positional = variant.positional;
    CAPTURE(positional);
    CAPTURE(variant.norm_first);
    CAPTURE(variant.tie);
    auto model = tiny_model(variant, 5);
    const Indices src = padded_sources();
    const Indices greedy = greedy_decode(*model, src, kBos, kEos, 10);
    BeamSearchOptions one;
    one.beam_size = 1;
    const auto beams = beam_search(*model, src, kBos, kEos, 10, one);
    REQUIRE(beams.size() == 3);
    for (std::size_t b = 0; b < 3; ++b) {
      REQUIRE(beams[b].size() == 1);
      std::vector<std::int64_t> row;
      for (std::size_t t = 0; t < greedy.shape()[1]; ++t) {
        row.push_back(greedy(b, t));
        if (greedy(b, t) == kEos) break;
      }
      if (row.back() != kEos) row.resize(10);  // ran to max_len
      CHECK(beams[b][0].tokens == row);
    }
    for (const std::size_t n_best : {std::size_t{1}, std::size_t{3}, std::size_t{6}}) {
      BeamSearchOptions options;
      options.beam_size = 4;
      options.n_best = n_best;
      options.length_penalty = 0.6f;
      const auto nbest = beam_search(*model, src, kBos, kEos, 8, options);
      REQUIRE(nbest.size() == 3);
      for (std::size_t b = 0; b < 3; ++b) {
        CHECK(nbest[b].size() == std::min<std::size_t>(4, n_best));
        for (std::size_t i = 0; i < nbest[b].size(); ++i) {
          const Hypothesis& h = nbest[b][i];
          if (i > 0) CHECK(nbest[b][i - 1].score >= h.score);
          CHECK(h.tokens.size() >= 1);
          CHECK(h.tokens.size() <= 8);
          CHECK(h.log_prob <= 0.f);
          CHECK(h.score == doctest::Approx(h.log_prob / std::pow((5.0 + h.tokens.size()) / 6.0, 0.6)).epsilon(1e-5));
          // The score is the model's: the sum of log-probabilities of the tokens by re-feeding.
          Indices alone = Indices::from_shape({1, 5});
          for (std::size_t j = 0; j < 5; ++j) alone(0, j) = src(b, j);
          const double total = log_prob_of(*model, alone, h.tokens);
          CHECK(h.log_prob == doctest::Approx(total).epsilon(1e-4));
        }
      }
    }
  }
  // Bad options throw.
  auto model = tiny_model(false);
  BeamSearchOptions zero;
  zero.beam_size = 0;
  CHECK_THROWS_WITH_AS(beam_search(*model, padded_sources(), kBos, kEos, 5, zero),
                       doctest::Contains("beam_size 0 and n_best 1 must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(beam_search(*model, Indices::from_shape({1, 0}), kBos, kEos, 5),
                       doctest::Contains("is empty"), Error);
}

namespace {

/// Beam search as decoding.hpp describes it, written plainly: one source at a time, every beam
/// scored by running the whole model on its prefix, no cache, no shared rows.
std::vector<Hypothesis> reference_beam_search(const Transformer& model, const Indices& source, std::size_t k,
                                              std::size_t max_len, double alpha) {
  struct Beam {
    std::vector<std::int64_t> tokens;
    double log_prob;
  };
  struct Candidate {
    double log_prob;
    std::size_t beam;
    std::int64_t token;
  };
  const std::size_t vocab = model.config().tgt_vocab;
  auto score = [&](const Beam& beam) { return beam.log_prob / std::pow((5.0 + beam.tokens.size()) / 6.0, alpha); };
  std::vector<Beam> live = {{{}, 0.0}};
  std::vector<Hypothesis> finished;
  NoGradGuard no_grad;
  for (std::size_t step = 0; step < max_len; ++step) {
    std::vector<Candidate> candidates;
    for (std::size_t i = 0; i < live.size(); ++i) {
      Indices tgt_in = Indices::from_shape({1, step + 1});
      tgt_in(0, 0) = kBos;
      for (std::size_t t = 0; t < step; ++t) tgt_in(0, t + 1) = live[i].tokens[t];
      const Array logits = model.forward(source, tgt_in).value();  // (1, step + 1, V)
      double z = 0;
      for (std::size_t v = 0; v < vocab; ++v) z += std::exp(double(logits(0, step, v)));
      for (std::size_t v = 0; v < vocab; ++v) {
        candidates.push_back({live[i].log_prob + logits(0, step, v) - std::log(z), i, std::int64_t(v)});
      }
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.log_prob > b.log_prob; });
    std::vector<Beam> next;
    for (std::size_t c = 0; c < std::min(candidates.size(), 2 * k) && next.size() < k; ++c) {
      Beam beam{live[candidates[c].beam].tokens, candidates[c].log_prob};
      beam.tokens.push_back(candidates[c].token);
      if (candidates[c].token != kEos) next.push_back(beam);
      else if (c < k) finished.push_back({beam.tokens, float(beam.log_prob), float(score(beam))});
    }
    if (finished.size() >= k) break;
    if (step + 1 == max_len) {
      for (const Beam& beam : next) finished.push_back({beam.tokens, float(beam.log_prob), float(score(beam))});
    }
    live = next;
  }
  std::stable_sort(finished.begin(), finished.end(),
                   [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  finished.resize(std::min(finished.size(), k));
  return finished;
}

}  // namespace

TEST_CASE("beam_search finds what the plain re-feeding beam search finds, for every source of a batch") {
  for (const Variant& variant : kVariants) {
    const std::string positional = variant.positional;
    CAPTURE(positional);
    CAPTURE(variant.norm_first);
    auto model = tiny_model(variant, 11);
    const Indices src = padded_sources();
    std::size_t same = 0, compared = 0;
    for (const std::size_t k : {std::size_t{2}, std::size_t{3}, std::size_t{5}}) {
      for (const float alpha : {0.f, 0.6f}) {
        CAPTURE(k);
        CAPTURE(alpha);
        BeamSearchOptions options;
        options.beam_size = k;
        options.n_best = k;
        options.length_penalty = alpha;
        const auto found = beam_search(*model, src, kBos, kEos, 9, options);
        REQUIRE(found.size() == 3);
        for (std::size_t b = 0; b < 3; ++b) {
          Indices source = Indices::from_shape({1, src.shape()[1]});
          for (std::size_t j = 0; j < src.shape()[1]; ++j) source(0, j) = src(b, j);
          const auto want = reference_beam_search(*model, source, k, 9, alpha);
          REQUIRE(found[b].size() == want.size());
          for (std::size_t i = 0; i < want.size(); ++i) {
            CHECK(found[b][i].log_prob == doctest::Approx(want[i].log_prob).epsilon(1e-4));
            CHECK(found[b][i].score == doctest::Approx(want[i].score).epsilon(1e-4));
            // RoPE's relative positions make some hypotheses score the same: where rounding broke
            // such a tie the other way, the hypothesis found must still be worth what it claims.
            if (found[b][i].tokens == want[i].tokens) ++same;
            else CHECK(found[b][i].log_prob == doctest::Approx(log_prob_of(*model, source, found[b][i].tokens)).epsilon(1e-4));
            ++compared;
          }
        }
      }
    }
    // With absolute positions no two hypotheses tie: every one is found as the reference finds it.
    if (positional != "rope") CHECK(same == compared);
    CHECK(compared > 0);
  }
}

namespace {

/// A decoder whose logits depend on each row's whole history (a hash of the tokens fed to it),
/// with a vocabulary wide enough for beam search to share its rows' work out over the threads.
class HashDecoder : public DecoderState {
 public:
  HashDecoder(std::size_t batch, std::size_t vocab, bool small = false)
      : vocab_(vocab), history_(batch), small_(small) {
    for (std::size_t b = 0; b < batch; ++b) history_[b] = 1000003u * (b + 1);
  }
  bool small_steps(std::size_t) const override { return small_; }
  std::size_t steps_in_team = 0;  // steps run by a thread that leads a team
  Array start() override { return logits(); }
  Array step(const Indices& tokens) override {
    steps_in_team += kernels::team_size() > 1;
    for (std::size_t b = 0; b < history_.size(); ++b) history_[b] = history_[b] * 6364136223846793005u + tokens(b) + 1;
    return logits();
  }
  void reorder(const std::vector<std::size_t>& rows) override {
    std::vector<std::uint64_t> next;
    for (const std::size_t r : rows) next.push_back(history_.at(r));
    history_ = std::move(next);
  }

 private:
  Array logits() const {
    Array out = Array::from_shape({history_.size(), vocab_});
    for (std::size_t b = 0; b < history_.size(); ++b) {
      for (std::size_t v = 0; v < vocab_; ++v) {
        const std::uint64_t h = (history_[b] ^ (v * 0x9E3779B97F4A7C15u)) * 0xBF58476D1CE4E5B9u;
        out(b, v) = static_cast<float>((h >> 40) % 1000) * 0.01f;  // ties among 1000 values
      }
    }
    return out;
  }
  std::size_t vocab_;
  std::vector<std::uint64_t> history_;
  bool small_;
};

}  // namespace

TEST_CASE("decoding one sentence with the KV cache: the same tokens on one thread and in a team of two or three") {
  // d_model 256: each step's products (256 x 256 and up, one or four rows) are large enough to
  // split over a team of the threads (kernels::kTeamProducts); on one thread there is no team.
  TransformerConfig c = TransformerConfig::preset("small", 300, 300);
  c.num_encoder_layers = c.num_decoder_layers = 1;
  c.dropout = 0.f;
  c.max_len = 40;
  Generator generator(17);
  Transformer model(c, generator);
  model.eval();
  REQUIRE(c.d_model * c.d_model > kernels::kTeamProducts);
  Indices src = Indices::from_shape({1, 9});
  for (std::size_t i = 0; i < src.size(); ++i) src(0, i) = static_cast<std::int64_t>(3 + (i * 37) % 290);
  TransformerDecoding decoding(model, src, kBos);
  CHECK(decoding.small_steps(4));
  CHECK_FALSE(decoding.small_steps(kernels::kSkinnyRows + 1));
  CHECK_FALSE(TransformerDecoding(model, src, kBos, /*kv_cache=*/false).small_steps(1));
  BeamSearchOptions options;
  options.beam_size = 4;
  options.n_best = 4;
  const int threads = omp_get_max_threads();
  std::vector<Indices> greedy;
  std::vector<std::vector<std::vector<Hypothesis>>> beams;
  for (const int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    greedy.push_back(greedy_decode(model, src, kBos, kEos, 30));
    beams.push_back(beam_search(model, src, kBos, kEos, 20, options));
  }
  omp_set_num_threads(threads);
  CHECK(greedy[0].shape()[1] > 5);
  for (std::size_t t = 1; t < greedy.size(); ++t) {
    CAPTURE(t);
    CHECK(greedy[t] == greedy[0]);
    REQUIRE(beams[t][0].size() == beams[0][0].size());
    for (std::size_t i = 0; i < beams[0][0].size(); ++i) {
      CHECK(beams[t][0][i].tokens == beams[0][0][i].tokens);
      CHECK(beams[t][0][i].log_prob == beams[0][0][i].log_prob);
    }
  }
}

TEST_CASE("beam_search: the same hypotheses on one thread and spread over two or three") {
  const std::size_t batch = 12, vocab = 1500;  // 48 rows of 1500 logits a step: over the threads
  BeamSearchOptions options;
  options.beam_size = 4;
  options.n_best = 4;
  const int threads = omp_get_max_threads();
  std::vector<std::vector<std::vector<Hypothesis>>> runs;
  for (const int t : {1, 2, 3}) {
    for (const bool small : {false, true}) {  // small steps: after the first, in a team of the threads
      omp_set_num_threads(t);
      HashDecoder decoder(batch, vocab, small);
      runs.push_back(beam_search(decoder, batch, vocab, 7, 12, options));
      // A team spins: it forms only when every thread has a core of its own.
      const bool team = small && t > 1 && static_cast<std::size_t>(t) <= kernels::cores_available();
      CHECK((decoder.steps_in_team > 0) == team);
    }
  }
  omp_set_num_threads(threads);
  REQUIRE(runs[0].size() == batch);
  for (std::size_t t = 1; t < runs.size(); ++t) {
    for (std::size_t b = 0; b < batch; ++b) {
      REQUIRE(runs[t][b].size() == runs[0][b].size());
      for (std::size_t i = 0; i < runs[0][b].size(); ++i) {
        CHECK(runs[t][b][i].tokens == runs[0][b][i].tokens);
        CHECK(runs[t][b][i].log_prob == runs[0][b][i].log_prob);
      }
    }
  }
}

TEST_CASE("IncrementalDecoder: bad tokens, batch, positions and rows throw") {
  auto model = tiny_model(true);
  const Indices src = padded_sources();
  IncrementalDecoder decoder(*model, model->encode(src), model->padding_mask(src));
  CHECK_THROWS_WITH_AS(decoder.step(Indices{kBos, 13, kBos}),
                       doctest::Contains("token 13 of row 1 is outside the target vocabulary [0, 13)"), Error);
  CHECK_THROWS_WITH_AS(decoder.step(Indices{kBos, kBos}), doctest::Contains("2 tokens for a batch of 3"), Error);
  CHECK_THROWS_WITH_AS(decoder.reorder({0, 3}), doctest::Contains("row 3 of a batch of 3"), Error);
  for (std::size_t t = 0; t < 24; ++t) decoder.step(Indices{kBos, kBos, kBos});
  CHECK(decoder.length() == 24);
  CHECK_THROWS_WITH_AS(decoder.step(Indices{kBos, kBos, kBos}), doctest::Contains("position 24 is past the model's max_len 24"),
                       Error);
  // Reordering keeps the chosen rows' caches: row 2 repeated decodes as row 2.
  IncrementalDecoder a(*model, model->encode(src), model->padding_mask(src));
  const Array first = a.step(Indices{kBos, kBos, kBos});  // (B, V)
  a.reorder({2, 2});
  const Array second = a.step(Indices{5, 5});  // (2, V)
  IncrementalDecoder b(*model, model->encode(src), model->padding_mask(src));
  b.step(Indices{kBos, kBos, kBos});
  const Array want = b.step(Indices{5, 5, 5});
  for (std::size_t v = 0; v < 13; ++v) {
    CHECK(second(0, v) == doctest::Approx(want(2, v)).epsilon(1e-5));
    CHECK(second(1, v) == doctest::Approx(want(2, v)).epsilon(1e-5));
  }
}
