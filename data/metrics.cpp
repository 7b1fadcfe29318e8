// BLEU, chrF and exact match over UTF-8 text, with sacreBLEU's definitions and tokenization.
#include <xgrad/data/metrics.hpp>
#include <xgrad/core/utf8.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::data {

namespace {

/// Length in bytes of the whitespace character starting at text[i], or 0. "Whitespace" is what
/// Python's str.split() splits on (sacreBLEU relies on it), written out as UTF-8 byte sequences.
std::size_t whitespace_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u; };
  const unsigned b0 = byte(0);
  if ((b0 >= 0x09 && b0 <= 0x0D) || (b0 >= 0x1C && b0 <= 0x20)) return 1;
  if (b0 == 0xC2 && (byte(1) == 0x85 || byte(1) == 0xA0)) return 2;                    // U+0085, U+00A0
  if (b0 == 0xE1 && byte(1) == 0x9A && byte(2) == 0x80) return 3;                        // U+1680
  if (b0 == 0xE2 && byte(1) == 0x80) {
    const unsigned b2 = byte(2);
    if ((b2 >= 0x80 && b2 <= 0x8A) || b2 == 0xA8 || b2 == 0xA9 || b2 == 0xAF) return 3;  // U+2000-200A, 2028, 2029, 202F
  }
  if (b0 == 0xE2 && byte(1) == 0x81 && byte(2) == 0x9F) return 3;                        // U+205F
  if (b0 == 0xE3 && byte(1) == 0x80 && byte(2) == 0x80) return 3;                        // U+3000
  return 0;
}

std::vector<std::string> split_on_whitespace(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (std::size_t i = 0; i < text.size();) {
    if (const std::size_t n = whitespace_length(text, i)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
      i += n;
    } else {
      word += text[i++];
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t start = 0;
  for (std::size_t at; (at = text.find(from, start)) != std::string::npos; start = at + from.size()) {
    out.append(text, start, at - start);
    out.append(to);
  }
  out.append(text, start, std::string::npos);
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// The symbols 13a always splits off: ASCII punctuation except ' - . ,
bool is_split_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= '!' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

/// One left-to-right pass of a two-character rewrite, as a regex substitution does it: where
/// `matches(a, b)` holds the pair is rewritten and the scan resumes after it. Working on bytes
/// gives the same result as on code points: the rules test ASCII characters and "not a digit",
/// and no byte of a multi-byte character is ASCII.
template <typename Matches, typename Rewrite>
std::string rewrite_pairs(const std::string& text, Matches matches, Rewrite rewrite) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  std::size_t i = 0;
  while (i < text.size()) {
    if (i + 1 < text.size() && matches(text[i], text[i + 1])) {
      rewrite(out, text[i], text[i + 1]);
      i += 2;
    } else {
      out += text[i++];
    }
  }
  return out;
}

/// Code points of UTF-8 text. A byte that does not begin a valid sequence stands for itself,
/// mapped into the surrogate range (which valid UTF-8 never yields) so it is never confused
/// with a real character.
std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Char c = decode_utf8_char(text, i);
    if (c.problem == Utf8Char::Problem::none) out += c.code_point;
    else out += static_cast<char32_t>(0xDC00 + static_cast<unsigned char>(text[i]));
    i += c.length;
  }
  return out;
}

void check_same_length(const char* function, std::size_t hypotheses, std::size_t references) {
  if (hypotheses != references) {
    throw Error(fmt::format("{}: {} hypotheses but {} references; expected one reference per hypothesis", function,
                            hypotheses, references));
  }
}

/// Counts of a sequence's n-grams of one order, keyed by any string-like n-gram.
template <typename Key, typename Sequence, typename MakeKey>
std::unordered_map<Key, std::size_t> count_ngrams(const Sequence& items, std::size_t n, MakeKey make_key) {
  std::unordered_map<Key, std::size_t> counts;
  for (std::size_t i = 0; i + n <= items.size(); ++i) ++counts[make_key(items, i, n)];
  return counts;
}

/// Sum over the hypothesis' n-grams of min(count in hypothesis, count in reference).
template <typename Key>
std::size_t clipped_matches(const std::unordered_map<Key, std::size_t>& hypothesis,
                            const std::unordered_map<Key, std::size_t>& reference) {
  std::size_t matches = 0;
  for (const auto& [ngram, count] : hypothesis) {
    const auto found = reference.find(ngram);
    if (found != reference.end()) matches += std::min(count, found->second);
  }
  return matches;
}

}  // namespace

std::vector<std::string> tokenize_13a(const std::string& text) {
  // The language-independent part of mteval-v13a.pl: markup and the four entities it undoes.
  std::string line = replace_all(text, "<skipped>", "");
  line = replace_all(line, "-\n", "");
  line = replace_all(line, "\n", " ");
  line = replace_all(line, "&quot;", "\"");
  line = replace_all(line, "&amp;", "&");
  line = replace_all(line, "&lt;", "<");
  line = replace_all(line, "&gt;", ">");

  std::string spaced;
  spaced.reserve(line.size() * 2);
  for (char c : line) {
    if (is_split_symbol(c)) {
      spaced += ' ';
      spaced += c;
      spaced += ' ';
    } else {
      spaced += c;
    }
  }
  line = " " + spaced + " ";
  const auto is_period_or_comma = [](char c) { return c == '.' || c == ','; };
  // Periods and commas split off unless preceded by a digit...
  line = rewrite_pairs(
      line, [&](char a, char b) { return !is_digit(a) && is_period_or_comma(b); },
      [](std::string& out, char a, char b) { out += {a, ' ', b, ' '}; });
  // ... and unless followed by one: "3.5" and "1,000" stay whole.
  line = rewrite_pairs(
      line, [&](char a, char b) { return is_period_or_comma(a) && !is_digit(b); },
      [](std::string& out, char a, char b) { out += {' ', a, ' ', b}; });
  // A dash after a digit is split off: "2-3" becomes "2 - 3".
  line = rewrite_pairs(
      line, [](char a, char b) { return is_digit(a) && b == '-'; },
      [](std::string& out, char a, char b) { out += {a, ' ', b, ' '}; });
  return split_on_whitespace(line);
}

double corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references) {
  check_same_length("corpus_bleu", hypotheses.size(), references.size());
  constexpr std::size_t kMaxOrder = 4;
  std::size_t matches[kMaxOrder] = {}, totals[kMaxOrder] = {};
  std::size_t hypothesis_length = 0, reference_length = 0;
  const auto join = [](const std::vector<std::string>& tokens, std::size_t start, std::size_t n) {
    std::string key = tokens[start];
    for (std::size_t k = 1; k < n; ++k) key += ' ' + tokens[start + k];  // tokens never hold a space
    return key;
  };
  for (std::size_t s = 0; s < hypotheses.size(); ++s) {
    const std::vector<std::string> hypothesis = tokenize_13a(hypotheses[s]);
    const std::vector<std::string> reference = tokenize_13a(references[s]);
    hypothesis_length += hypothesis.size();
    reference_length += reference.size();
    for (std::size_t n = 1; n <= kMaxOrder; ++n) {
      const auto hypothesis_counts = count_ngrams<std::string>(hypothesis, n, join);
      const auto reference_counts = count_ngrams<std::string>(reference, n, join);
      matches[n - 1] += clipped_matches(hypothesis_counts, reference_counts);
      totals[n - 1] += hypothesis.size() >= n ? hypothesis.size() - n + 1 : 0;
    }
  }
  // BLEU = BP * exp(mean over n of log p_n); without smoothing any p_n = 0 makes it 0.
  double log_sum = 0.0;
  for (std::size_t n = 0; n < kMaxOrder; ++n) {
    if (matches[n] == 0) return 0.0;
    log_sum += std::log(static_cast<double>(matches[n]) / static_cast<double>(totals[n]));
  }
  const double c = static_cast<double>(hypothesis_length), r = static_cast<double>(reference_length);
  const double brevity_penalty = c < r ? std::exp(1.0 - r / c) : 1.0;
  return 100.0 * brevity_penalty * std::exp(log_sum / kMaxOrder);
}

double corpus_chrf(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                   std::size_t char_order, double beta) {
  check_same_length("corpus_chrf", hypotheses.size(), references.size());
  if (char_order == 0) throw Error("corpus_chrf: char_order is 0; expected at least 1");
  if (!(beta >= 0.0) || !std::isfinite(beta)) {
    throw Error(fmt::format("corpus_chrf: beta is {}; expected a finite number >= 0", beta));
  }
  // Per order n: n-grams in the hypotheses, in the references, and matched (clipped).
  std::vector<std::size_t> hypothesis_total(char_order), reference_total(char_order), matched(char_order);
  const auto substring = [](const std::u32string& chars, std::size_t start, std::size_t n) {
    return chars.substr(start, n);
  };
  const auto characters = [](const std::string& text) {
    std::string joined;
    for (const std::string& word : split_on_whitespace(text)) joined += word;
    return decode_utf8(joined);
  };
  for (std::size_t s = 0; s < hypotheses.size(); ++s) {
    const std::u32string hypothesis = characters(hypotheses[s]);
    const std::u32string reference = characters(references[s]);
    for (std::size_t n = 1; n <= char_order; ++n) {
      const auto hypothesis_counts = count_ngrams<std::u32string>(hypothesis, n, substring);
      const auto reference_counts = count_ngrams<std::u32string>(reference, n, substring);
      matched[n - 1] += clipped_matches(hypothesis_counts, reference_counts);
      hypothesis_total[n - 1] += hypothesis.size() >= n ? hypothesis.size() - n + 1 : 0;
      reference_total[n - 1] += reference.size() >= n ? reference.size() - n + 1 : 0;
    }
  }
  // Precision and recall are averaged over the orders both sides have n-grams of; then
  // F_beta = (1 + beta^2) P R / (beta^2 P + R).
  double precision = 0.0, recall = 0.0;
  std::size_t orders = 0;
  for (std::size_t n = 0; n < char_order; ++n) {
    if (hypothesis_total[n] == 0 || reference_total[n] == 0) continue;
    precision += static_cast<double>(matched[n]) / static_cast<double>(hypothesis_total[n]);
    recall += static_cast<double>(matched[n]) / static_cast<double>(reference_total[n]);
    ++orders;
  }
  if (orders == 0 || precision + recall == 0.0) return 0.0;
  precision /= static_cast<double>(orders);
  recall /= static_cast<double>(orders);
  const double beta2 = beta * beta;
  return 100.0 * (1.0 + beta2) * precision * recall / (beta2 * precision + recall);
}

double exact_match(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references) {
  check_same_length("exact_match", hypotheses.size(), references.size());
  if (hypotheses.empty()) return 0.0;
  std::size_t equal = 0;
  for (std::size_t s = 0; s < hypotheses.size(); ++s) equal += hypotheses[s] == references[s];
  return static_cast<double>(equal) / static_cast<double>(hypotheses.size());
}

}  // namespace xgrad::data
