// Translating with a trained model, and scoring it: teacher-forced loss and token accuracy, then
// exact match, BLEU and chrF of its own translations.
#include "seq2seq.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include <xgrad/autograd/autograd.hpp>
#include <xgrad/data/metrics.hpp>
#include <xgrad/models/decoding.hpp>

namespace seq2seq {

using xgrad::Indices;
using xgrad::data::Tokenizer;

namespace {

/// The longest output allowed for a source of `source_length` tokens: the given limit, or twice
/// as long plus some slack; within the model's positions.
std::size_t output_limit(const xgrad::models::Transformer& model, std::size_t source_length,
                         std::size_t max_output) {
  return std::min(model.config().max_len, max_output > 0 ? max_output : 2 * source_length + 16);
}

/// Rows `rows` of `sources` as (R, S): ids, EOS, then padding.
Indices source_batch(const std::vector<std::vector<std::int64_t>>& sources, const std::vector<std::size_t>& rows) {
  std::size_t width = 0;
  for (std::size_t r : rows) width = std::max(width, sources[r].size() + 1);
  Indices src = xt::zeros<std::int64_t>({rows.size(), width});
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& ids = sources[rows[i]];
    std::copy(ids.begin(), ids.end(), &src(i, 0));
    src(i, ids.size()) = Tokenizer::eos_id;
  }
  return src;
}

/// Tokens up to (not including) the first EOS.
std::vector<std::int64_t> until_eos(std::vector<std::int64_t> tokens) {
  tokens.erase(std::find(tokens.begin(), tokens.end(), Tokenizer::eos_id), tokens.end());
  return tokens;
}

}  // namespace

std::vector<std::string> translate(const xgrad::models::Transformer& model, const Tokenizer& tokenizer,
                                   const std::vector<std::string>& sources, const DecodeSettings& settings,
                                   std::vector<std::string>* problems) {
  xgrad::NoGradGuard no_grad;
  const std::size_t max_len = model.config().max_len;
  std::vector<std::vector<std::int64_t>> encoded(sources.size());
  std::vector<std::size_t> order;  // the translatable sentences, shortest first
  if (problems) problems->assign(sources.size(), "");
  for (std::size_t i = 0; i < sources.size(); ++i) {
    encoded[i] = tokenizer.encode(sources[i]);
    std::string problem;
    if (encoded[i].empty()) problem = "empty: nothing to translate";
    else if (encoded[i].size() + 1 > max_len)
      problem = fmt::format("{} tokens, more than the model's max_len - 1 = {}", encoded[i].size(), max_len - 1);
    if (problem.empty()) order.push_back(i);
    else if (problems) (*problems)[i] = problem;
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return encoded[a].size() < encoded[b].size(); });

  std::vector<std::string> out(sources.size());
  std::size_t begin = 0;
  while (begin < order.size()) {
    // Rows of similar length, within the token budget (the longest row last).
    std::size_t end = begin + 1;
    while (end < order.size() && (end - begin + 1) * (encoded[order[end]].size() + 1) <= settings.batch_tokens) ++end;
    const std::vector<std::size_t> rows(order.begin() + begin, order.begin() + end);
    const Indices src = source_batch(encoded, rows);
    const std::size_t limit = output_limit(model, src.shape(1), settings.max_output);
    if (settings.beam <= 1) {
      const Indices out_ids = xgrad::models::greedy_decode(model, src, Tokenizer::bos_id, Tokenizer::eos_id, limit,
                                                           settings.kv_cache);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        std::vector<std::int64_t> row(out_ids.shape(1));
        for (std::size_t t = 0; t < row.size(); ++t) row[t] = out_ids(i, t);
        out[rows[i]] = tokenizer.decode(until_eos(row));
      }
    } else {
      xgrad::models::BeamSearchOptions options;
      options.beam_size = settings.beam;
      options.length_penalty = settings.length_penalty;
      const auto hypotheses =
          xgrad::models::beam_search(model, src, Tokenizer::bos_id, Tokenizer::eos_id, limit, options);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        if (!hypotheses[i].empty()) out[rows[i]] = tokenizer.decode(until_eos(hypotheses[i][0].tokens));
      }
    }
    begin = end;
  }
  return out;
}

Json Scores::to_json() const {
  return {{"loss", loss},   {"perplexity", perplexity}, {"token_accuracy", token_accuracy},
          {"exact_match", exact_match}, {"bleu", bleu}, {"chrf", chrf}, {"pairs", pairs}, {"decoded", decoded}};
}

double Scores::metric(const std::string& name) const {
  if (name == "exact_match") return exact_match;
  if (name == "bleu") return bleu;
  if (name == "chrf") return chrf;
  if (name == "loss") return -loss;  // higher is better everywhere
  throw xgrad::Error(fmt::format("unknown metric '{}' (exact_match, bleu, chrf, loss)", name));
}

Scores evaluate(const xgrad::models::Transformer& model, const Tokenizer& tokenizer,
                const std::vector<xgrad::data::Example>& pairs, std::size_t decode_limit,
                const DecodeSettings& decoding) {
  xgrad::NoGradGuard no_grad;
  Scores scores;
  scores.pairs = pairs.size();

  // Teacher forcing: the summed negative log-likelihood and the argmax hits over target tokens.
  const std::vector<xgrad::data::EncodedPair> encoded =
      encode_pairs(tokenizer, pairs, model.config().max_len, "evaluation");
  xgrad::data::BatchSamplerOptions options;
  options.batch_tokens = decoding.batch_tokens;
  options.shuffle = false;
  double nll = 0;
  std::size_t tokens = 0, hits = 0;
  for (const xgrad::data::Batch& batch : xgrad::data::BatchSampler::sequential(encoded, options)) {
    const xgrad::Tensor logits = model.forward(batch.src, batch.tgt_in);  // (B, T, V)
    const auto vocab = static_cast<std::int64_t>(logits.size(-1));
    xgrad::CrossEntropyOptions ce;
    ce.ignore_index = Tokenizer::pad_id;
    ce.reduction = xgrad::Reduction::Sum;
    Indices targets = batch.tgt_out;
    targets.reshape({targets.size()});
    const xgrad::Tensor flat = xgrad::reshape(logits, {-1, vocab});
    nll += xgrad::cross_entropy(flat, targets, ce).item();
    const Indices predicted = xgrad::argmax(flat, 1);
    for (std::size_t i = 0; i < targets.size(); ++i) {
      if (targets(i) == Tokenizer::pad_id) continue;
      ++tokens;
      hits += predicted(i) == targets(i);
    }
  }
  scores.loss = tokens > 0 ? nll / static_cast<double>(tokens) : 0.0;
  scores.perplexity = std::exp(scores.loss);
  scores.token_accuracy = tokens > 0 ? static_cast<double>(hits) / static_cast<double>(tokens) : 0.0;

  // Free-running decoding of the first decode_limit pairs.
  const std::size_t n = std::min(decode_limit, pairs.size());
  if (n > 0) {
    std::vector<std::string> sources(n), references(n);
    for (std::size_t i = 0; i < n; ++i) sources[i] = pairs[i].source, references[i] = pairs[i].target;
    // No hypothesis much longer than the longest reference can score: stop decoding there.
    DecodeSettings bounded = decoding;
    std::size_t longest = 0;
    for (const xgrad::data::EncodedPair& pair : encoded) longest = std::max(longest, pair.target.size());
    bounded.max_output = longest + 8;
    const std::vector<std::string> hypotheses = translate(model, tokenizer, sources, bounded);
    scores.decoded = n;
    scores.exact_match = xgrad::data::exact_match(hypotheses, references);
    scores.bleu = xgrad::data::corpus_bleu(hypotheses, references);
    scores.chrf = xgrad::data::corpus_chrf(hypotheses, references);
  }
  return scores;
}

}  // namespace seq2seq
