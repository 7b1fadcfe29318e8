// SentencePieceTokenizer: a unigram subword model trained in memory with libsentencepiece, kept
// as its serialized bytes (what spm.model holds) and a processor loaded from them.
#include <xgrad/data/tokenizer.hpp>

#include <filesystem>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <xgrad/core/error.hpp>
#include <xgrad/utils/atomic_file.hpp>

namespace xgrad::data {

namespace {

/// Feeds the training texts to the trainer from memory.
class TextIterator : public sentencepiece::SentenceIterator {
 public:
  explicit TextIterator(const std::vector<std::string>& texts) : texts_(texts) {}
  bool done() const override { return next_ >= texts_.size(); }
  void Next() override { ++next_; }
  const std::string& value() const override { return texts_[next_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& texts_;
  std::size_t next_ = 0;
};

}  // namespace

struct SentencePieceTokenizer::Impl {
  std::string model_bytes;
  sentencepiece::SentencePieceProcessor processor;
};

SentencePieceTokenizer SentencePieceTokenizer::train(const std::vector<std::string>& texts, std::size_t vocab_size,
                                                     std::uint64_t seed) {
  if (texts.empty()) throw Error("SentencePieceTokenizer::train: no texts to train on");
  if (vocab_size <= 4) {
    throw Error(fmt::format("SentencePieceTokenizer::train: vocab_size is {}, expected more than the 4 specials",
                            vocab_size));
  }
  // The text is taken as it is (no normalization, spaces kept), so decode(encode(text)) gives the
  // text back; every character of the training texts gets a piece (character_coverage 1).
  const std::unordered_map<std::string, std::string> options = {
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(vocab_size)},
      {"pad_id", std::to_string(pad_id)},
      {"bos_id", std::to_string(bos_id)},
      {"eos_id", std::to_string(eos_id)},
      {"unk_id", std::to_string(unk_id)},
      {"pad_piece", "<pad>"},
      {"bos_piece", "<bos>"},
      {"eos_piece", "<eos>"},
      {"unk_piece", "<unk>"},
      {"unk_surface", "\xE2\x81\x87"},  // U+2047, as CharTokenizer
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"character_coverage", "1.0"},
      {"num_threads", "1"},  // one thread: the same texts and seed give the same model bytes
      {"minloglevel", "1"},  // warnings and errors only
  };
  // The library's generator is process-wide; 0xFFFFFFFF is reserved by it for "seed from the device".
  unsigned int library_seed = static_cast<unsigned int>(seed ^ (seed >> 32));
  if (library_seed == 0xFFFFFFFFu) library_seed = 0xFFFFFFFEu;
  sentencepiece::SetRandomGeneratorSeed(library_seed);

  TextIterator iterator(texts);
  std::string model_bytes;
  const sentencepiece::util::Status status =
      sentencepiece::SentencePieceTrainer::Train(options, &iterator, &model_bytes);
  if (!status.ok()) {
    throw Error(fmt::format("SentencePieceTokenizer::train: training a {}-piece model on {} texts failed: {}",
                            vocab_size, texts.size(), status.ToString()));
  }
  return from_serialized(model_bytes);
}

SentencePieceTokenizer SentencePieceTokenizer::from_serialized(const std::string& model_bytes) {
  auto impl = std::make_shared<Impl>();
  impl->model_bytes = model_bytes;
  const sentencepiece::util::Status status = impl->processor.LoadFromSerializedProto(model_bytes);
  if (!status.ok()) {
    throw Error(fmt::format("SentencePieceTokenizer: cannot load the model ({} bytes): {}", model_bytes.size(),
                            status.ToString()));
  }
  const sentencepiece::SentencePieceProcessor& p = impl->processor;
  if (p.pad_id() != pad_id || p.bos_id() != bos_id || p.eos_id() != eos_id || p.unk_id() != unk_id) {
    throw Error(fmt::format(
        "SentencePieceTokenizer: the model's special ids are pad={}, bos={}, eos={}, unk={}; expected {}, {}, {}, {}",
        p.pad_id(), p.bos_id(), p.eos_id(), p.unk_id(), pad_id, bos_id, eos_id, unk_id));
  }
  SentencePieceTokenizer tokenizer;
  tokenizer.impl_ = std::move(impl);
  return tokenizer;
}

std::vector<std::int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  const std::vector<int> ids = impl_->processor.EncodeAsIds(text);
  return std::vector<std::int64_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  const std::int64_t size = static_cast<std::int64_t>(vocab_size());
  std::vector<int> narrow;
  narrow.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= size) {
      throw Error(fmt::format("SentencePieceTokenizer::decode: id {} at position {} is out of range [0, {})", ids[i],
                              i, size));
    }
    narrow.push_back(static_cast<int>(ids[i]));
  }
  return impl_->processor.DecodeIds(narrow);  // pad, bos and eos are control pieces: decoded as nothing
}

std::size_t SentencePieceTokenizer::vocab_size() const {
  return static_cast<std::size_t>(impl_->processor.GetPieceSize());
}

void SentencePieceTokenizer::save(const std::string& dir) const {
  // The model first: tokenizer.json never names a model that is not there yet.
  const std::filesystem::path folder(dir);
  utils::write_file_atomically((folder / "spm.model").string(), impl_->model_bytes, "SentencePieceTokenizer::save");
  const nlohmann::json json = {{"kind", kind()}, {"model", "spm.model"}};
  utils::write_file_atomically((folder / "tokenizer.json").string(), json.dump(1) + "\n",
                               "SentencePieceTokenizer::save");
}

}  // namespace xgrad::data
