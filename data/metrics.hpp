// Scores of translations against references, as sacreBLEU computes them.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace xgrad::data {

/// The "13a" tokenization of mteval-v13a.pl (sacreBLEU's default): punctuation split from words,
/// numbers' separators kept, whitespace (as Python's str.split sees it, Unicode spaces included)
/// normalized. Returns the tokens.
std::vector<std::string> tokenize_13a(const std::string& text);

/// Corpus BLEU-4 on a 0-100 scale: n-gram precisions (n = 1..4) clipped by the reference counts
/// and summed over the corpus, geometric mean, times the brevity penalty exp(1 - r/c) when c < r.
/// One reference per hypothesis, both tokenized with tokenize_13a. No smoothing: a corpus with no
/// matching 4-gram scores 0 (so does an empty corpus). Throws xgrad::Error when the lists differ
/// in length.
double corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references);

/// Corpus chrF (Popovic 2015) on a 0-100 scale, as sacreBLEU's default CHRF: character n-grams of
/// order 1..6 (whitespace removed), statistics summed over the corpus, precision and recall each
/// averaged over the orders both sides have n-grams of, then F-beta with beta = 2. Characters are
/// code points; a byte that is not valid UTF-8 counts as one character. Throws xgrad::Error when
/// the lists differ in length, char_order is 0 or beta is negative or not finite.
double corpus_chrf(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                   std::size_t char_order = 6, double beta = 2.0);

/// Fraction (0..1) of hypotheses equal to their reference, byte for byte (0 for no lines).
/// Throws xgrad::Error when the lists differ in length.
double exact_match(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references);

}  // namespace xgrad::data
