// Text <-> token ids. One tokenizer serves both sides of a pair (a shared vocabulary, so the
// model may tie its embeddings). Ids 0..3 are always <pad>, <bos>, <eos>, <unk>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace xgrad::data {

class Tokenizer {
 public:
  static constexpr std::int64_t pad_id = 0;
  static constexpr std::int64_t bos_id = 1;
  static constexpr std::int64_t eos_id = 2;
  static constexpr std::int64_t unk_id = 3;

  virtual ~Tokenizer() = default;
  /// Text -> ids, without BOS or EOS. Unknown pieces become unk_id.
  virtual std::vector<std::int64_t> encode(const std::string& text) const = 0;
  /// Ids -> text; pad, bos and eos are dropped, unk_id becomes U+2047 "⁇", an id out of range
  /// throws xgrad::Error.
  virtual std::string decode(const std::vector<std::int64_t>& ids) const = 0;
  virtual std::size_t vocab_size() const = 0;
  /// "char" or "sentencepiece".
  virtual std::string kind() const = 0;
  /// Writes the tokenizer into folder `dir` (existing): "tokenizer.json", plus "spm.model" for
  /// SentencePiece. Files are written atomically (temp file, then rename). tokenizer.json is
  ///   {"kind": "char", "specials": ["<pad>", "<bos>", "<eos>", "<unk>"], "symbols": ["a", "b", ...]}
  /// (symbol i, one code point as a UTF-8 string, is id 4 + i) or
  ///   {"kind": "sentencepiece", "model": "spm.model"}
  /// (spm.model: the serialized SentencePiece ModelProto, readable by any SentencePiece tool).
  virtual void save(const std::string& dir) const = 0;
};

/// One token per Unicode code point: the specials, then every code point seen in the training
/// texts, in order of code point (deterministic).
class CharTokenizer : public Tokenizer {
 public:
  /// Builds the vocabulary from `texts` (UTF-8; throws xgrad::Error naming the text and the byte
  /// offset on invalid UTF-8).
  static CharTokenizer build(const std::vector<std::string>& texts);
  /// The code points, in id order from id 4 (the specials excluded). Throws xgrad::Error on a
  /// repeated code point or one that is not a Unicode scalar value.
  explicit CharTokenizer(std::vector<char32_t> symbols);

  /// Throws xgrad::Error naming the byte offset on invalid UTF-8.
  std::vector<std::int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<std::int64_t>& ids) const override;
  std::size_t vocab_size() const override;
  std::string kind() const override { return "char"; }
  void save(const std::string& dir) const override;

 private:
  std::vector<char32_t> symbols_;
  // code point -> id, built in the constructor
  struct Index;
  std::shared_ptr<const Index> index_;
};

/// SentencePiece subwords (unigram model) trained on the training texts with libsentencepiece.
class SentencePieceTokenizer : public Tokenizer {
 public:
  /// Trains a model of `vocab_size` pieces (specials included) on `texts`; the model is kept in
  /// memory and written by save(). Throws xgrad::Error with SentencePiece's message on failure
  /// (e.g. a vocabulary larger than the text allows, or smaller than its distinct characters).
  /// The text is not normalized and every character of `texts` gets a piece, so decode(encode(t))
  /// gives back any text made of those characters. One thread; the same texts and seed give the
  /// same model bytes. The seed goes to SentencePiece's process-wide generator.
  static SentencePieceTokenizer train(const std::vector<std::string>& texts, std::size_t vocab_size,
                                      std::uint64_t seed = 0);
  /// Loads a serialized model (the bytes of spm.model). Throws xgrad::Error when the bytes are no
  /// model or its special ids are not the four above.
  static SentencePieceTokenizer from_serialized(const std::string& model_bytes);

  /// Bytes that are not valid UTF-8 become unk_id, as unknown characters do.
  std::vector<std::int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<std::int64_t>& ids) const override;
  std::size_t vocab_size() const override;
  std::string kind() const override { return "sentencepiece"; }
  void save(const std::string& dir) const override;

 private:
  SentencePieceTokenizer() = default;  // only from train() or from_serialized()
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

/// Reads what Tokenizer::save wrote in folder `dir`. Throws xgrad::Error naming the file when it
/// is missing or malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace xgrad::data
