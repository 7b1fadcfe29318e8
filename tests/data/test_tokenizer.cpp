// Tokenizers: character round trips over ASCII, accents, CJK and emoji, unknown characters, the
// SentencePiece model trained in memory (round trips, determinism, save and load), and every
// bad-input message: invalid UTF-8, bad ids, malformed tokenizer folders.
#include <doctest/doctest.h>

#include "temp_dir.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <xgrad/core/error.hpp>
#include <xgrad/data/tokenizer.hpp>

using namespace xgrad;
using namespace xgrad::data;
namespace fs = std::filesystem;
using Ids = std::vector<std::int64_t>;

namespace {

doctest::Contains contains(const std::string& text) { return doctest::Contains(text.c_str()); }


std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// The message of the xgrad::Error thrown by load_tokenizer once tokenizer.json = `json` is
/// written into `dir`; fails the test when nothing is thrown.
std::string load_error(const TempDir& dir, const std::string& json) {
  dir.write("tokenizer.json", json);
  try {
    load_tokenizer(dir.path());
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("load_tokenizer accepted: " << json);
  return "";
}

/// Checks that loading `json` fails with a message naming tokenizer.json and containing `problem`.
void check_rejected(const std::string& json, const std::string& problem) {
  TempDir dir("tokenizer");
  const std::string message = load_error(dir, json);
  INFO("message: ", message);
  CHECK(message.find("'" + dir.file("tokenizer.json") + "'") != std::string::npos);
  CHECK(message.find(problem) != std::string::npos);
}

const std::vector<std::string> kMixedTexts = {
    "Hello, world!",                 // ASCII
    "café naïve résumé Ærø",         // accents (2-byte UTF-8)
    "日本語のテキスト",              // CJK (3 bytes)
    "emoji 😀 and 👍🏽 too",          // 4 bytes, and a modifier code point
    "tab\tand\nnewline",
};

/// Sentences from a small vocabulary (seeded; the engine's raw output is the same everywhere).
std::vector<std::string> generated_sentences(std::size_t count) {
  const std::vector<std::string> words = {"the",   "cat",  "sat",  "on",   "a",     "mat",  "dog",  "ran",
                                          "fast",  "über", "naïve", "café", "big",  "small", "red", "house",
                                          "river", "日本", "語",    "and",  "then",  "slept"};
  std::mt19937 engine(12345);
  std::vector<std::string> sentences;
  for (std::size_t i = 0; i < count; ++i) {
    std::string sentence;
    const std::size_t length = 2 + engine() % 7;
    for (std::size_t w = 0; w < length; ++w) {
      if (w > 0) sentence += ' ';
      sentence += words[engine() % words.size()];
    }
    sentences.push_back(sentence + (engine() % 2 ? "." : "!"));
  }
  return sentences;
}

const std::vector<std::string>& training_sentences() {
  static const std::vector<std::string> sentences = generated_sentences(300);
  return sentences;
}

constexpr std::size_t kPieces = 48;

/// One model for the tests that only read it: training is the slow part.
const SentencePieceTokenizer& trained() {
  static const SentencePieceTokenizer tokenizer = SentencePieceTokenizer::train(training_sentences(), kPieces, 7);
  return tokenizer;
}

}  // namespace

TEST_CASE("CharTokenizer: specials first, then code points in code point order") {
  const CharTokenizer tokenizer = CharTokenizer::build({"cab", "bca", "é"});
  CHECK(tokenizer.vocab_size() == 4 + 4);
  CHECK(tokenizer.kind() == "char");
  CHECK(tokenizer.encode("abcé") == Ids{4, 5, 6, 7});
  CHECK(tokenizer.encode("") == Ids{});
  CHECK(Tokenizer::pad_id == 0);
  CHECK(Tokenizer::bos_id == 1);
  CHECK(Tokenizer::eos_id == 2);
  CHECK(Tokenizer::unk_id == 3);
}

TEST_CASE("CharTokenizer: round trips over ASCII, accents, CJK and emoji, one id per code point") {
  const CharTokenizer tokenizer = CharTokenizer::build(kMixedTexts);
  for (const std::string& text : kMixedTexts) {
    INFO(text);
    const Ids ids = tokenizer.encode(text);
    CHECK(std::none_of(ids.begin(), ids.end(), [](std::int64_t id) { return id < 4; }));
    CHECK(tokenizer.decode(ids) == text);
  }
  CHECK(tokenizer.encode("😀").size() == 1);
  CHECK(tokenizer.encode("👍🏽").size() == 2);
  CHECK(tokenizer.encode("日本語").size() == 3);
  CHECK(tokenizer.encode("é").size() == 1);
}

TEST_CASE("CharTokenizer: unknown characters become unk, decoded as U+2047; specials are dropped") {
  const CharTokenizer tokenizer = CharTokenizer::build({"ab"});
  CHECK(tokenizer.encode("aZb😀") == Ids{4, 3, 5, 3});
  CHECK(tokenizer.decode({4, 3, 5}) == "a\xE2\x81\x87" "b");
  CHECK(tokenizer.decode({1, 4, 5, 2, 0, 0}) == "ab");
}

TEST_CASE("CharTokenizer: ids out of range are rejected") {
  const CharTokenizer tokenizer = CharTokenizer::build({"ab"});
  CHECK_THROWS_WITH_AS(tokenizer.decode({4, 6}),
                       doctest::Contains("CharTokenizer::decode: id 6 at position 1 is out of range [0, 6)"), Error);
  CHECK_THROWS_WITH_AS(tokenizer.decode({-1}),
                       doctest::Contains("CharTokenizer::decode: id -1 at position 0 is out of range [0, 6)"), Error);
}

TEST_CASE("CharTokenizer: invalid UTF-8 is rejected with its byte offset") {
  struct Case {
    std::string text, message;
  };
  const std::vector<Case> cases = {
      {"ab\x80", "at byte 2: 0x80 cannot start a character"},
      {"a\xF8\x88\x80\x80\x80", "at byte 1: 0xf8 cannot start a character"},
      {"abc\xE6\x97", "at byte 3: the text ends inside a 3-byte character"},
      {"\xC3\x28", "at byte 1: 0x28 is not a continuation byte"},
      {"x\xC0\xAF", "at byte 1: overlong encoding"},
      {"xy\xE0\x80\xAF", "at byte 2: overlong encoding"},
      {"\xED\xA0\x80", "at byte 0: U+D800 is not a Unicode scalar value"},
      {"ok \xF4\x90\x80\x80", "at byte 3: U+110000 is not a Unicode scalar value"},
  };
  for (const Case& c : cases) {
    INFO(c.message);
    CHECK_THROWS_WITH_AS(CharTokenizer::build({"fine", c.text}),
                         contains("CharTokenizer::build: text 1: invalid UTF-8 " + c.message), Error);
    const CharTokenizer tokenizer = CharTokenizer::build({"abc"});
    CHECK_THROWS_WITH_AS(tokenizer.encode(c.text), contains("CharTokenizer::encode: invalid UTF-8 " + c.message),
                         Error);
  }
}

TEST_CASE("CharTokenizer: the symbols must be distinct Unicode scalar values") {
  CHECK_THROWS_WITH_AS(CharTokenizer({U'a', U'b', U'a'}),
                       doctest::Contains("CharTokenizer: U+0061 appears twice, as ids 4 and 6"), Error);
  CHECK_THROWS_WITH_AS(CharTokenizer({U'a', char32_t(0xDC00)}),
                       doctest::Contains("CharTokenizer: symbol 1 (id 5) is U+DC00, not a Unicode scalar value"),
                       Error);
  CHECK_THROWS_WITH_AS(CharTokenizer({char32_t(0x110000)}),
                       doctest::Contains("symbol 0 (id 4) is U+110000, not a Unicode scalar value"), Error);
  // Given symbols keep their order: the ids follow the list, sorted or not.
  CHECK(CharTokenizer({U'z', U'a'}).encode("az") == Ids{5, 4});
}

TEST_CASE("CharTokenizer: save writes a readable tokenizer.json that loads back to the same ids") {
  const CharTokenizer tokenizer = CharTokenizer::build(kMixedTexts);
  TempDir dir("tokenizer");
  tokenizer.save(dir.path());
  CHECK(dir.entries() == std::vector<std::string>{"tokenizer.json"});
  const nlohmann::json json = nlohmann::json::parse(read_text(dir.file("tokenizer.json")));
  CHECK(json["kind"] == "char");
  CHECK(json["specials"] == nlohmann::json({"<pad>", "<bos>", "<eos>", "<unk>"}));
  REQUIRE(json["symbols"].size() == tokenizer.vocab_size() - 4);
  CHECK(json["symbols"][0] == "\t");
  CHECK(json["symbols"].back() == "😀");

  const std::unique_ptr<Tokenizer> loaded = load_tokenizer(dir.path());
  CHECK(loaded->kind() == "char");
  CHECK(loaded->vocab_size() == tokenizer.vocab_size());
  for (const std::string& text : kMixedTexts) {
    CHECK(loaded->encode(text) == tokenizer.encode(text));
    CHECK(loaded->decode(tokenizer.encode(text)) == text);
  }
  // Saving again replaces the file in place.
  CharTokenizer::build({"xyz"}).save(dir.path());
  CHECK(dir.entries() == std::vector<std::string>{"tokenizer.json"});
  CHECK(load_tokenizer(dir.path())->vocab_size() == 7);
}

TEST_CASE("CharTokenizer: save into a missing folder throws") {
  TempDir dir("tokenizer");
  CHECK_THROWS_WITH_AS(CharTokenizer::build({"a"}).save(dir.file("missing")),
                       doctest::Contains("CharTokenizer::save"), Error);
}

TEST_CASE("load_tokenizer: missing or malformed tokenizer.json") {
  {
    TempDir dir("tokenizer");
    const std::string path = dir.file("tokenizer.json");
    CHECK_THROWS_WITH_AS(load_tokenizer(dir.path()),
                         contains("load_tokenizer: '" + path + "' is missing or not a regular file"), Error);
    fs::create_directory(path);
    CHECK_THROWS_WITH_AS(load_tokenizer(dir.path()), doctest::Contains("is missing or not a regular file"), Error);
  }
  check_rejected("{\"kind\": \"char\", ", "is not valid JSON");
  check_rejected("", "is not valid JSON");
  check_rejected("[1, 2]", "expected a JSON object");
  check_rejected("{}", "\"kind\" is missing or not a string");
  check_rejected("{\"kind\": 3}", "\"kind\" is missing or not a string");
  check_rejected("{\"kind\": \"bpe\"}", "unknown kind \"bpe\", expected \"char\" or \"sentencepiece\"");

  const std::string specials = "\"specials\": [\"<pad>\", \"<bos>\", \"<eos>\", \"<unk>\"]";
  check_rejected("{\"kind\": \"char\", \"symbols\": []}", "\"specials\" is missing or not an array");
  check_rejected("{\"kind\": \"char\", \"specials\": [\"<pad>\", \"<unk>\"], \"symbols\": []}",
                 "\"specials\" is [\"<pad>\",\"<unk>\"], expected [\"<pad>\",\"<bos>\",\"<eos>\",\"<unk>\"]");
  check_rejected("{\"kind\": \"char\", " + specials + "}", "\"symbols\" is missing or not an array");
  check_rejected("{\"kind\": \"char\", " + specials + ", \"symbols\": \"abc\"}",
                 "\"symbols\" is missing or not an array");
  check_rejected("{\"kind\": \"char\", " + specials + ", \"symbols\": [\"a\", 7]}", "symbol 1 is 7, expected a string");
  check_rejected("{\"kind\": \"char\", " + specials + ", \"symbols\": [\"ab\"]}",
                 "symbol 0 is \"ab\", expected exactly one character");
  check_rejected("{\"kind\": \"char\", " + specials + ", \"symbols\": [\"a\", \"\"]}",
                 "symbol 1 is \"\", expected exactly one character");
  check_rejected("{\"kind\": \"char\", " + specials + ", \"symbols\": [\"a\", \"é\", \"a\"]}",
                 "U+0061 appears twice, as ids 4 and 6");
  // An empty vocabulary is legal: everything is unknown.
  TempDir dir("tokenizer");
  dir.write("tokenizer.json", "{\"kind\": \"char\", " + specials + ", \"symbols\": []}");
  CHECK(load_tokenizer(dir.path())->encode("hi") == Ids{3, 3});
}

TEST_CASE("SentencePieceTokenizer: trained in memory, it round-trips text and knows its specials") {
  const SentencePieceTokenizer& tokenizer = trained();
  CHECK(tokenizer.kind() == "sentencepiece");
  CHECK(tokenizer.vocab_size() == kPieces);
  std::size_t pieces = 0;
  for (const std::string& sentence : training_sentences()) {
    const Ids ids = tokenizer.encode(sentence);
    REQUIRE(std::all_of(ids.begin(), ids.end(), [](std::int64_t id) { return id > 3 && id < std::int64_t(kPieces); }));
    REQUIRE(tokenizer.decode(ids) == sentence);
    pieces += ids.size();
  }
  // Subwords: far fewer pieces than bytes.
  std::size_t bytes = 0;
  for (const std::string& sentence : training_sentences()) bytes += sentence.size();
  CHECK(pieces * 2 < bytes);
  // Unseen sentences of seen characters, spaces as they were.
  for (const std::string& text : {std::string("the dog slept on the big red mat"), std::string("  the  cat "),
                                  std::string("日本 über naïve")}) {
    CHECK(tokenizer.decode(tokenizer.encode(text)) == text);
  }
  CHECK(tokenizer.encode("") == Ids{});
  // Specials in the ids are dropped.
  Ids framed = tokenizer.encode("the cat");
  framed.insert(framed.begin(), Tokenizer::bos_id);
  framed.push_back(Tokenizer::eos_id);
  framed.push_back(Tokenizer::pad_id);
  CHECK(tokenizer.decode(framed) == "the cat");
}

TEST_CASE("SentencePieceTokenizer: unknown characters and invalid UTF-8 become unk, decoded as U+2047") {
  const SentencePieceTokenizer& tokenizer = trained();
  const Ids ids = tokenizer.encode("cat Z");
  CHECK(std::count(ids.begin(), ids.end(), Tokenizer::unk_id) == 1);
  CHECK(tokenizer.decode(ids) == "cat \xE2\x81\x87");
  const Ids invalid = tokenizer.encode("cat \xFF");
  CHECK(std::count(invalid.begin(), invalid.end(), Tokenizer::unk_id) == 1);
}

TEST_CASE("SentencePieceTokenizer: ids out of range are rejected") {
  const SentencePieceTokenizer& tokenizer = trained();
  CHECK_THROWS_WITH_AS(tokenizer.decode({5, 48}),
                       doctest::Contains("SentencePieceTokenizer::decode: id 48 at position 1 is out of range [0, 48)"),
                       Error);
  CHECK_THROWS_WITH_AS(tokenizer.decode({-3}), doctest::Contains("id -3 at position 0 is out of range [0, 48)"), Error);
}

TEST_CASE("SentencePieceTokenizer: save and load give the same ids; the same seed gives the same model bytes") {
  TempDir first("tokenizer"), second("tokenizer");
  trained().save(first.path());
  CHECK(first.entries() == std::vector<std::string>{"spm.model", "tokenizer.json"});
  const nlohmann::json json = nlohmann::json::parse(read_text(first.file("tokenizer.json")));
  CHECK(json == nlohmann::json({{"kind", "sentencepiece"}, {"model", "spm.model"}}));

  const std::unique_ptr<Tokenizer> loaded = load_tokenizer(first.path());
  CHECK(loaded->kind() == "sentencepiece");
  CHECK(loaded->vocab_size() == kPieces);
  for (const std::string& sentence : training_sentences()) {
    REQUIRE(loaded->encode(sentence) == trained().encode(sentence));
  }

  SentencePieceTokenizer::train(training_sentences(), kPieces, 7).save(second.path());
  const std::string model = read_text(first.file("spm.model"));
  CHECK(model.size() > 100);
  CHECK(read_text(second.file("spm.model")) == model);
  CHECK(SentencePieceTokenizer::from_serialized(model).encode("the cat sat") == trained().encode("the cat sat"));
}

TEST_CASE("SentencePieceTokenizer: training failures are reported") {
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::train({}, 32),
                       doctest::Contains("SentencePieceTokenizer::train: no texts to train on"), Error);
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::train({"abc"}, 4),
                       doctest::Contains("SentencePieceTokenizer::train: vocab_size is 4, expected more than the 4 "
                                         "specials"),
                       Error);
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::train({"tiny text", "more tiny text"}, 5000),
                       doctest::Contains("training a 5000-piece model on 2 texts failed:"), Error);
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::train({"tiny text", "more tiny text"}, 5000),
                       doctest::Contains("Vocabulary size too high"), Error);
}

TEST_CASE("SentencePieceTokenizer: models that cannot serve are rejected") {
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::from_serialized("not a model"),
                       doctest::Contains("SentencePieceTokenizer: cannot load the model (11 bytes):"), Error);
  // A model with SentencePiece's own default ids (unk 0, bos 1, eos 2, no pad).
  std::string other;
  struct Texts : sentencepiece::SentenceIterator {
    std::vector<std::string> texts = generated_sentences(50);
    std::size_t next = 0;
    bool done() const override { return next >= texts.size(); }
    void Next() override { ++next; }
    const std::string& value() const override { return texts[next]; }
    sentencepiece::util::Status status() const override { return {}; }
  } texts;
  REQUIRE(sentencepiece::SentencePieceTrainer::Train({{"vocab_size", "40"}, {"minloglevel", "1"}}, &texts, &other)
              .ok());
  CHECK_THROWS_WITH_AS(
      SentencePieceTokenizer::from_serialized(other),
      doctest::Contains("the model's special ids are pad=-1, bos=1, eos=2, unk=0; expected 0, 1, 2, 3"), Error);
}

TEST_CASE("load_tokenizer: malformed SentencePiece folders") {
  check_rejected("{\"kind\": \"sentencepiece\"}", "\"model\" is missing or not a string");
  check_rejected("{\"kind\": \"sentencepiece\", \"model\": 1}", "\"model\" is missing or not a string");
  check_rejected("{\"kind\": \"sentencepiece\", \"model\": \"../spm.model\"}",
                 "\"model\" is \"../spm.model\", expected a file name in the same folder");
  check_rejected("{\"kind\": \"sentencepiece\", \"model\": \"\"}", "expected a file name in the same folder");

  TempDir dir("tokenizer");
  const std::string json = "{\"kind\": \"sentencepiece\", \"model\": \"spm.model\"}";
  CHECK(load_error(dir, json).find("'" + dir.file("spm.model") + "' is missing or not a regular file") !=
        std::string::npos);
  dir.write("spm.model", "garbage");
  const std::string message = load_error(dir, json);
  INFO(message);
  const std::string expected = "load_tokenizer: '" + dir.file("spm.model") + "': SentencePieceTokenizer: cannot load";
  CHECK(message.find(expected) != std::string::npos);
}
