// CharTokenizer (one id per Unicode code point) and load_tokenizer, which reads back what either
// tokenizer's save() wrote: tokenizer.json names the kind, plus spm.model for SentencePiece.
#include <xgrad/data/tokenizer.hpp>
#include <xgrad/core/utf8.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/utils/atomic_file.hpp>

namespace xgrad::data {

namespace {

/// What decode() writes for unk_id: U+2047 DOUBLE QUESTION MARK, as SentencePiece does.
constexpr char32_t kUnknownSurface = 0x2047;

const char* const kSpecialNames[] = {"<pad>", "<bos>", "<eos>", "<unk>"};

bool is_scalar_value(char32_t c) { return c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF); }

/// The code points of UTF-8 `text`; invalid UTF-8 throws xgrad::Error starting with `context`
/// and naming the byte offset.
std::vector<char32_t> decode_utf8(const std::string& text, const std::string& context) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Char c = decode_utf8_char(text, i);
    if (c.problem != Utf8Char::Problem::none) {
      throw Error(fmt::format("{}: {}", context, describe_utf8_problem(text, c)));
    }
    out.push_back(c.code_point);
    i += c.length;
  }
  return out;
}

std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(fmt::format("load_tokenizer: '{}' is missing or not a regular file", path));
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw Error(fmt::format("load_tokenizer: cannot read '{}'", path));
  return bytes;
}

std::unique_ptr<Tokenizer> load_char_tokenizer(const nlohmann::json& json, const std::string& path) {
  const auto fail = [&](const std::string& problem) {
    return Error(fmt::format("load_tokenizer: '{}': {}", path, problem));
  };
  const auto specials = json.find("specials");
  if (specials == json.end() || !specials->is_array()) throw fail("\"specials\" is missing or not an array");
  const nlohmann::json expected_specials(std::vector<std::string>(std::begin(kSpecialNames), std::end(kSpecialNames)));
  if (*specials != expected_specials) {
    throw fail(fmt::format("\"specials\" is {}, expected {}", specials->dump(), expected_specials.dump()));
  }
  const auto symbols = json.find("symbols");
  if (symbols == json.end() || !symbols->is_array()) throw fail("\"symbols\" is missing or not an array");
  std::vector<char32_t> code_points;
  for (std::size_t i = 0; i < symbols->size(); ++i) {
    const nlohmann::json& symbol = (*symbols)[i];
    if (!symbol.is_string()) throw fail(fmt::format("symbol {} is {}, expected a string", i, symbol.dump()));
    const std::vector<char32_t> decoded =
        decode_utf8(symbol.get<std::string>(), fmt::format("load_tokenizer: '{}': symbol {}", path, i));
    if (decoded.size() != 1) {
      throw fail(fmt::format("symbol {} is {}, expected exactly one character", i, symbol.dump()));
    }
    code_points.push_back(decoded[0]);
  }
  try {
    return std::make_unique<CharTokenizer>(std::move(code_points));
  } catch (const Error& e) {
    throw fail(e.what());
  }
}

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const nlohmann::json& json, const std::string& dir,
                                                        const std::string& path) {
  const auto model = json.find("model");
  if (model == json.end() || !model->is_string()) {
    throw Error(fmt::format("load_tokenizer: '{}': \"model\" is missing or not a string", path));
  }
  const std::string name = model->get<std::string>();
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    throw Error(fmt::format("load_tokenizer: '{}': \"model\" is \"{}\", expected a file name in the same folder",
                            path, printable(name)));
  }
  const std::string model_path = (std::filesystem::path(dir) / name).string();
  const std::string bytes = read_whole_file(model_path);
  try {
    return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::from_serialized(bytes));
  } catch (const Error& e) {
    throw Error(fmt::format("load_tokenizer: '{}': {}", model_path, e.what()));
  }
}

}  // namespace

struct CharTokenizer::Index {
  std::unordered_map<char32_t, std::int64_t> id_of;
};

CharTokenizer::CharTokenizer(std::vector<char32_t> symbols) : symbols_(std::move(symbols)) {
  auto index = std::make_shared<Index>();
  for (std::size_t i = 0; i < symbols_.size(); ++i) {
    const char32_t c = symbols_[i];
    const std::int64_t id = static_cast<std::int64_t>(i) + 4;
    if (!is_scalar_value(c)) {
      throw Error(fmt::format("CharTokenizer: symbol {} (id {}) is U+{:04X}, not a Unicode scalar value", i, id,
                              static_cast<std::uint32_t>(c)));
    }
    const auto [slot, inserted] = index->id_of.emplace(c, id);
    if (!inserted) {
      throw Error(fmt::format("CharTokenizer: U+{:04X} appears twice, as ids {} and {}",
                              static_cast<std::uint32_t>(c), slot->second, id));
    }
  }
  index_ = std::move(index);
}

CharTokenizer CharTokenizer::build(const std::vector<std::string>& texts) {
  std::vector<char32_t> seen;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::vector<char32_t> code_points = decode_utf8(texts[i], fmt::format("CharTokenizer::build: text {}", i));
    seen.insert(seen.end(), code_points.begin(), code_points.end());
  }
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  return CharTokenizer(std::move(seen));
}

std::vector<std::int64_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<std::int64_t> ids;
  for (const char32_t c : decode_utf8(text, "CharTokenizer::encode")) {
    const auto found = index_->id_of.find(c);
    ids.push_back(found == index_->id_of.end() ? unk_id : found->second);
  }
  return ids;
}

std::string CharTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::string text;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t id = ids[i];
    if (id < 0 || id >= static_cast<std::int64_t>(vocab_size())) {
      throw Error(fmt::format("CharTokenizer::decode: id {} at position {} is out of range [0, {})", id, i,
                              vocab_size()));
    }
    if (id == unk_id) {
      append_utf8(text, kUnknownSurface);
    } else if (id > unk_id) {
      append_utf8(text, symbols_[static_cast<std::size_t>(id - 4)]);
    }  // pad, bos and eos are dropped
  }
  return text;
}

std::size_t CharTokenizer::vocab_size() const { return symbols_.size() + 4; }

void CharTokenizer::save(const std::string& dir) const {
  nlohmann::json symbols = nlohmann::json::array();
  for (const char32_t c : symbols_) {
    std::string symbol;
    append_utf8(symbol, c);
    symbols.push_back(symbol);
  }
  nlohmann::json json;
  json["kind"] = kind();
  json["specials"] = std::vector<std::string>(std::begin(kSpecialNames), std::end(kSpecialNames));
  json["symbols"] = std::move(symbols);
  utils::write_file_atomically((std::filesystem::path(dir) / "tokenizer.json").string(), json.dump(1) + "\n",
                               "CharTokenizer::save");
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "tokenizer.json").string();
  const std::string text = read_whole_file(path);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("load_tokenizer: '{}' is not valid JSON: {}", path, printable(e.what())));
  }
  if (!json.is_object()) throw Error(fmt::format("load_tokenizer: '{}': expected a JSON object", path));
  const auto kind = json.find("kind");
  if (kind == json.end() || !kind->is_string()) {
    throw Error(fmt::format("load_tokenizer: '{}': \"kind\" is missing or not a string", path));
  }
  if (*kind == "char") return load_char_tokenizer(json, path);
  if (*kind == "sentencepiece") return load_sentencepiece_tokenizer(json, dir, path);
  throw Error(fmt::format("load_tokenizer: '{}': unknown kind {}, expected \"char\" or \"sentencepiece\"", path,
                          kind->dump()));
}

}  // namespace xgrad::data
