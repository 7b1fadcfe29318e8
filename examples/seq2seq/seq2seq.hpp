// The seq2seq program's pieces: its settings, the run folder, data, evaluation, and one function
// per command (dump, train, eval, translate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <xgrad/data/batching.hpp>
#include <xgrad/data/tasks.hpp>
#include <xgrad/data/tokenizer.hpp>
#include <xgrad/models/transformer.hpp>

namespace seq2seq {

using Json = nlohmann::json;

/// Where the pairs come from: a built-in task, or the user's TSV files.
struct DataSettings {
  std::string task = "dates";
  std::uint64_t data_seed = 1;
  xgrad::data::TaskSizes sizes;
  std::string train_file, valid_file, test_file;  // set: a user corpus instead of the task
  std::size_t spm_vocab = 0;                      // > 0: SentencePiece subwords of that size
  std::size_t batch_tokens = 4096;

  bool user_corpus() const { return !train_file.empty(); }
};

/// The model: a preset and the fields the user overrode.
struct ModelSettings {
  std::string preset = "tiny";
  std::optional<std::size_t> d_model, nhead, layers, dim_feedforward, max_len;
  std::optional<float> dropout;
  std::optional<std::string> activation, positional;
  std::optional<bool> norm_first, tie_embeddings;

  xgrad::models::TransformerConfig config(std::size_t vocab) const;
};

/// Everything `train` needs; saved as args.json in the run folder so that --resume continues
/// with the same settings.
struct TrainSettings {
  std::string run_dir = "runs/dates";
  DataSettings data;
  ModelSettings model;
  // The paper's recipe (5.3, 5.4): Adam(0.9, 0.98, 1e-9), lr = factor * D^-0.5 *
  // min(s^-0.5, s * warmup^-1.5), label smoothing 0.1, dropout 0.1 (the preset's).
  double lr_factor = 1.0;
  std::int64_t warmup = 4000;
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-9;
  float label_smoothing = 0.1f;
  double clip_norm = 0.0;  // 0: no clipping
  std::size_t accumulate = 1;
  std::size_t steps = 20000;
  double max_minutes = 0.0;  // 0: no time limit
  std::size_t valid_every = 500;
  std::size_t valid_decode = 500;  // validation sentences decoded for exact match, BLEU, chrF
  std::string best_metric;         // exact_match, bleu, chrf or loss; empty: exact_match on a built-in
                                   // task, chrf on a corpus (robust to short targets, where BLEU-4 is 0)
  double stop_at = 0.0;            // > 0: stop once best_metric reaches it on validation
  std::uint64_t seed = 1;
  int threads = 0;  // 0: every core. The machine's, not the run's: a resumed run may change it
  // "scaled": embeddings drawn from N(0, 1/D), so that embed * sqrt(D) has unit variance, the
  // scale of the positional encodings (as tensor2tensor and fairseq); "unit": N(0, 1), as
  // torch.nn.Embedding, which leaves positions 1/sqrt(D) as loud as the tokens.
  std::string embedding_init = "scaled";
  std::string precision = "fp32";  // or "bf16": the step's products under xgrad::autocast
  // A step whose loss or gradient norm is not finite is skipped (no update); this many in a row
  // stop the run. check_nan: anomaly mode, naming the op that made the first NaN or Inf.
  std::size_t max_bad_steps = 5;
  bool check_nan = false;

  Json to_json() const;
  /// Reads args.json's object; throws xgrad::Error for a missing section, a value of the wrong
  /// type or one out of its range (validate()).
  static TrainSettings from_json(const Json& j);
  /// Throws xgrad::Error naming the first setting out of its range.
  void validate() const;
  /// The settings saved in `run_dir`/args.json, or nothing when there is no such file.
  static std::optional<TrainSettings> load(const std::string& run_dir);
  /// Writes them to `run_dir`/args.json, atomically.
  void save(const std::string& run_dir) const;
};

// --- data ------------------------------------------------------------------------------------

/// The three splits as text, and the tokenizer built on (or loaded for) them.
struct Corpus {
  xgrad::data::Splits splits;
  std::shared_ptr<const xgrad::data::Tokenizer> tokenizer;
};

/// The splits of a built-in task or of the user's files (test may be empty for user files).
xgrad::data::Splits load_splits(const DataSettings& data);
/// Builds the tokenizer from the training texts (characters, or SentencePiece when spm_vocab > 0).
std::shared_ptr<const xgrad::data::Tokenizer> build_tokenizer(const DataSettings& data,
                                                              const std::vector<xgrad::data::Example>& train);
/// Tokenizes pairs; pairs longer than max_len - 1 tokens on either side are left out and counted
/// in one warning naming `split`.
std::vector<xgrad::data::EncodedPair> encode_pairs(const xgrad::data::Tokenizer& tokenizer,
                                                   const std::vector<xgrad::data::Example>& pairs,
                                                   std::size_t max_len, const std::string& split);

// --- the run folder --------------------------------------------------------------------------
//
//   RUN/args.json                 the TrainSettings
//   RUN/metrics.jsonl             one JSON object per log line (train and valid)
//   RUN/curves.svg                the loss and metric curves
//   RUN/checkpoints/step-N/       model.safetensors (loads in PyTorch), state.safetensors
//                                 (optimizer, scheduler, RNG, data position), tokenizer files
//   RUN/last, RUN/best            symbolic links to checkpoints, replaced atomically

/// A loaded checkpoint folder: the model and its tokenizer, checked against each other.
struct Checkpoint {
  std::string dir;
  std::shared_ptr<xgrad::models::Transformer> model;
  std::shared_ptr<const xgrad::data::Tokenizer> tokenizer;
};

/// `path` is a checkpoint folder, or a run folder (then its best, else its last checkpoint:
/// xgrad::training::resolve_checkpoint). int8: the model will decode in int8 only
/// (xgrad::models::load_int8: an int8 file's fp32 weights are never made).
Checkpoint load_checkpoint(const std::string& path, bool int8 = false);

// --- evaluation ------------------------------------------------------------------------------

struct DecodeSettings {
  std::size_t beam = 1;  // 1: greedy
  bool kv_cache = true;
  float length_penalty = 0.6f;
  std::size_t batch_tokens = 4096;
  std::size_t max_output = 0;  // longest output in tokens; 0: twice the source's plus 16
  std::string precision = "fp32";  // "int8": the linear layers in int8; "bf16": products under autocast
};

/// Puts a loaded model in the precision decoding asks for (int8: nn::quantize_dynamic), and says so.
void apply_precision(xgrad::models::Transformer& model, const DecodeSettings& decoding);

/// Translates sentences (batched by length; order kept). A sentence that is empty or too long
/// for the model gives ""; if `problems` is given, it gets one entry per sentence: what kept it
/// from being translated, or "" when it was.
std::vector<std::string> translate(const xgrad::models::Transformer& model, const xgrad::data::Tokenizer& tokenizer,
                                   const std::vector<std::string>& sources, const DecodeSettings& settings,
                                   std::vector<std::string>* problems = nullptr);

/// Teacher-forced loss (no label smoothing), perplexity and token accuracy over the pairs, and
/// exact match, BLEU and chrF of the decoded translations of the first `decode_limit` of them.
struct Scores {
  double loss = 0, perplexity = 0, token_accuracy = 0;
  double exact_match = 0, bleu = 0, chrf = 0;
  std::size_t pairs = 0, decoded = 0;
  Json to_json() const;
  double metric(const std::string& name) const;
};
Scores evaluate(const xgrad::models::Transformer& model, const xgrad::data::Tokenizer& tokenizer,
                const std::vector<xgrad::data::Example>& pairs, std::size_t decode_limit,
                const DecodeSettings& decoding);

// --- commands --------------------------------------------------------------------------------

int dump_command(const std::string& model_path, const std::string& batch_path, const std::string& out_path);
/// What a resumed run may change: how long it goes on, the machine's threads, the NaN guard.
struct TrainOverrides {
  std::optional<std::size_t> steps;
  std::optional<double> max_minutes;
  std::optional<int> threads;
  std::optional<std::size_t> max_bad_steps;
  bool check_nan = false;
};

/// resume_dir empty: a new run with `settings`; else continue that run (the overrides given
/// replace the saved settings). A run folder with no checkpoint yet starts again from step 0
/// with its saved settings. A run folder is locked for the life of the process that trains it.
int train_command(TrainSettings settings, const std::string& resume_dir, const TrainOverrides& overrides);
int eval_command(const std::string& model_path, const std::string& test_file, const std::string& split,
                 const DecodeSettings& decoding, std::size_t limit);
int translate_command(const std::string& model_path, const DecodeSettings& decoding);
/// Writes a built-in task's splits to out_dir/{train,valid,test}.tsv.
int export_command(const DataSettings& data, const std::string& out_dir);

}  // namespace seq2seq
