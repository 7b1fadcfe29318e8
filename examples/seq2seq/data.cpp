// The program's data: a built-in task or the user's TSV files, tokenized with characters or
// SentencePiece subwords.
#include "seq2seq.hpp"

#include <iostream>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/data/corpus.hpp>

namespace seq2seq {

using xgrad::data::EncodedPair;
using xgrad::data::Example;

xgrad::data::Splits load_splits(const DataSettings& data) {
  if (!data.user_corpus()) return xgrad::data::make_task(data.task, data.data_seed, data.sizes);
  if (data.valid_file.empty()) throw xgrad::Error("--train needs --valid too (a file of held-out pairs)");
  xgrad::data::Splits splits;
  splits.train = xgrad::data::read_tsv(data.train_file, &std::cerr);
  splits.valid = xgrad::data::read_tsv(data.valid_file, &std::cerr);
  if (!data.test_file.empty()) splits.test = xgrad::data::read_tsv(data.test_file, &std::cerr);
  return splits;
}

std::shared_ptr<const xgrad::data::Tokenizer> build_tokenizer(const DataSettings& data,
                                                              const std::vector<Example>& train) {
  std::vector<std::string> texts;
  texts.reserve(2 * train.size());
  for (const Example& pair : train) {
    texts.push_back(pair.source);
    texts.push_back(pair.target);
  }
  if (data.spm_vocab > 0) {
    return std::make_shared<xgrad::data::SentencePieceTokenizer>(
        xgrad::data::SentencePieceTokenizer::train(texts, data.spm_vocab, data.data_seed));
  }
  return std::make_shared<xgrad::data::CharTokenizer>(xgrad::data::CharTokenizer::build(texts));
}

std::vector<EncodedPair> encode_pairs(const xgrad::data::Tokenizer& tokenizer, const std::vector<Example>& pairs,
                                      std::size_t max_len, const std::string& split) {
  std::vector<EncodedPair> encoded;
  encoded.reserve(pairs.size());
  std::size_t too_long = 0;
  for (const Example& pair : pairs) {
    EncodedPair ids{tokenizer.encode(pair.source), tokenizer.encode(pair.target)};
    // One position each side goes to EOS (source) and BOS/EOS (target).
    if (ids.source.empty() || ids.target.empty() || ids.source.size() + 1 > max_len ||
        ids.target.size() + 1 > max_len) {
      ++too_long;
      continue;
    }
    encoded.push_back(std::move(ids));
  }
  if (too_long > 0) {
    std::cerr << fmt::format("seq2seq: warning: left out {} of {} {} pairs: empty after tokenizing or longer "
                             "than the model's max_len - 1 = {} tokens\n",
                             too_long, pairs.size(), split, max_len - 1);
  }
  if (encoded.empty()) throw xgrad::Error(fmt::format("no usable {} pair left after tokenizing", split));
  return encoded;
}

}  // namespace seq2seq
