// seq2seq: train, evaluate and use the encoder-decoder Transformer from the command line.
//
//   seq2seq train [--task dates|reverse|sort|copy|add | --train F --valid F [--test F]] [--run-dir DIR] ...
//   seq2seq train --resume DIR
//   seq2seq eval --model DIR [--test FILE | --split test]
//   seq2seq translate --model DIR [--beam K] [--kv-cache on|off]    (sentences on stdin)
//   seq2seq export --task numbers --out DIR                          (a task as TSV files)
//   seq2seq dump --model M.safetensors --batch B.safetensors --out O.safetensors
//   mpirun -np N seq2seq train ...                                    (data-parallel over N ranks)
#include "seq2seq.hpp"

#include <csignal>
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include <xgrad/core/threads.hpp>
#include <xgrad/distributed/distributed.hpp>

namespace {

/// Flags shared by the commands that decode.
void add_decoding_flags(CLI::App* command, seq2seq::DecodeSettings& decoding, std::string& kv_cache) {
  command->add_option("--beam", decoding.beam, "beam size (1: greedy)")->check(CLI::Range(1, 64));
  command->add_option("--length-penalty", decoding.length_penalty, "GNMT length penalty alpha for beam search");
  command->add_option("--kv-cache", kv_cache, "greedy decoding with the key/value cache, or re-feeding the prefix")
      ->check(CLI::IsMember({"on", "off"}));
  command->add_option("--batch-tokens", decoding.batch_tokens, "source tokens per decoding batch")
      ->check(CLI::PositiveNumber);
  command->add_option("--precision", decoding.precision,
                      "fp32; int8: the linear layers in int8 (weights per output row, activations per row); bf16: "
                      "products of bf16 inputs (see the first line for whether this CPU runs bf16 fast)")
      ->check(CLI::IsMember({"fp32", "int8", "bf16"}));
}

/// Flags that choose a built-in task and the sizes of its splits.
void add_task_flags(CLI::App* command, seq2seq::DataSettings& data) {
  command->add_option("--task", data.task, "built-in task: dates, reverse, sort, copy, add, numbers")
      ->check(CLI::IsMember(xgrad::data::task_names()));
  command->add_option("--data-seed", data.data_seed, "seed of the built-in task's data");
  command->add_option("--train-size", data.sizes.train, "training pairs of a built-in task");
  command->add_option("--valid-size", data.sizes.valid, "validation pairs of a built-in task");
  command->add_option("--test-size", data.sizes.test, "test pairs of a built-in task");
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) makes a write fail with EFBIG, reported with the file's name,
  // instead of killing the process mid-save.
  std::signal(SIGXFSZ, SIG_IGN);
  xgrad::distributed::Environment world(argc, argv);  // under mpirun: MPI; else a world of one
  CLI::App app{"seq2seq: the encoder-decoder Transformer of \"Attention Is All You Need\", from the command line"};
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::help);
  app.option_defaults()->always_capture_default();  // --help shows each option's default

  // train
  seq2seq::TrainSettings train;
  std::string resume;
  seq2seq::TrainOverrides overrides;
  CLI::App* train_command = app.add_subcommand("train", "train a model (the paper's recipe by default)");
  auto& data = train.data;
  auto& model = train.model;
  add_task_flags(train_command, data);
  CLI::Option* train_file =
      train_command->add_option("--train", data.train_file, "training corpus: UTF-8 lines source<TAB>target");
  train_command->add_option("--valid", data.valid_file, "validation corpus (same format)")->needs(train_file);
  train_command->add_option("--test", data.test_file, "test corpus (same format), scored at the end")
      ->needs(train_file);
  train_command->add_option("--spm-vocab", data.spm_vocab, "SentencePiece subwords of this vocabulary size "
                                                           "(default: characters)");
  train_command->add_option("--batch-tokens", data.batch_tokens, "padded tokens per batch")
      ->check(CLI::PositiveNumber);
  train_command->add_option("--run-dir", train.run_dir, "folder for checkpoints, metrics and curves");
  train_command->add_option("--resume", resume, "continue the run in this folder exactly where it stopped");
  train_command->add_option("--model", model.preset, "preset: tiny, small, base, big")
      ->check(CLI::IsMember({"tiny", "small", "base", "big"}));
  train_command->add_option("--d-model", model.d_model, "model width");
  train_command->add_option("--heads", model.nhead, "attention heads");
  train_command->add_option("--layers", model.layers, "encoder and decoder layers (each)");
  train_command->add_option("--ff", model.dim_feedforward, "feed-forward width");
  train_command->add_option("--max-len", model.max_len, "longest sequence, in tokens");
  train_command->add_option("--dropout", model.dropout, "dropout (the preset's by default)");
  train_command->add_option("--activation", model.activation, "relu or gelu")
      ->check(CLI::IsMember({"relu", "gelu"}));
  train_command->add_option("--positional", model.positional, "sinusoidal, learned or rope");
  train_command->add_option("--norm-first", model.norm_first, "pre-LN instead of the paper's post-LN");
  train_command->add_option("--tie-embeddings", model.tie_embeddings, "share embeddings and generator (3.4)");
  train_command->add_option("--lr-factor", train.lr_factor, "scale of the warmup/inverse-sqrt schedule");
  train_command->add_option("--warmup", train.warmup, "warmup steps")->check(CLI::PositiveNumber);
  train_command->add_option("--beta1", train.beta1, "Adam beta1");
  train_command->add_option("--beta2", train.beta2, "Adam beta2");
  train_command->add_option("--eps", train.eps, "Adam epsilon");
  train_command->add_option("--label-smoothing", train.label_smoothing, "label smoothing")->check(CLI::Range(0.0, 1.0));
  train_command->add_option("--clip-norm", train.clip_norm, "clip the gradients' global norm (0: off)");
  train_command->add_option("--accumulate", train.accumulate, "batches per optimizer step")
      ->check(CLI::PositiveNumber);
  train_command->add_option("--steps", overrides.steps, "optimizer steps in all");
  train_command->add_option("--max-minutes", overrides.max_minutes, "stop after this much training time (0: no limit)");
  train_command->add_option("--valid-every", train.valid_every, "validate and save every N steps")
      ->check(CLI::PositiveNumber);
  train_command->add_option("--valid-decode", train.valid_decode, "validation pairs decoded for exact match, BLEU "
                                                                  "and chrF");
  train_command->add_option("--best-metric", train.best_metric, "exact_match, bleu, chrf or loss")
      ->check(CLI::IsMember({"exact_match", "bleu", "chrf", "loss"}));
  train_command->add_option("--stop-at", train.stop_at,
                            "stop once the best metric reaches this on validation (exact_match in 0..1, bleu and "
                            "chrf in 0..100)");
  train_command->add_option("--seed", train.seed, "seed of initialisation, dropout and batch order");
  std::optional<int> threads;
  const auto add_threads = [&threads](CLI::App* command) {
    command->add_option("--threads", threads,
                        "threads for the kernels and GEMMs (default: every core; under mpirun, the cores of a "
                        "machine shared between its ranks)")
        ->check(CLI::PositiveNumber);
  };
  add_threads(train_command);
  train_command->add_option("--precision", train.precision,
                            "fp32, or bf16: the step's products (GEMMs, attention) take bf16 inputs, with fp32 sums, "
                            "master weights, optimizer state, norms, softmax and loss")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  train_command->add_option("--max-bad-steps", overrides.max_bad_steps,
                            "a step whose loss or gradient norm is NaN or infinite is skipped with a warning; this "
                            "many in a row stop the run (default 5)")
      ->check(CLI::PositiveNumber);
  train_command->add_flag("--check-nan", overrides.check_nan,
                          "anomaly mode: check every op's output and gradient, and stop at the first NaN or Inf "
                          "naming the op (slow: for finding where a run goes wrong)");
  train_command->add_option("--embedding-init", train.embedding_init,
                            "scaled: N(0, 1/d_model), so embeddings * sqrt(d_model) match the positions' scale; "
                            "unit: N(0, 1) as torch.nn.Embedding")
      ->check(CLI::IsMember({"scaled", "unit"}));

  // eval
  std::string model_path, test_file, split = "test", kv_cache = "on";
  std::size_t limit = 0;
  seq2seq::DecodeSettings decoding;
  CLI::App* eval_command = app.add_subcommand("eval", "score a checkpoint: exact match, BLEU, chrF, loss");
  eval_command->add_option("--model", model_path, "checkpoint or run folder")->required();
  eval_command->add_option("--test", test_file, "pairs to score: UTF-8 lines source<TAB>target");
  eval_command->add_option("--split", split, "without --test: this split of the run's built-in task")
      ->check(CLI::IsMember({"train", "valid", "test"}));
  eval_command->add_option("--limit", limit, "score only the first N pairs");
  add_decoding_flags(eval_command, decoding, kv_cache);
  add_threads(eval_command);

  // translate
  CLI::App* translate_command = app.add_subcommand("translate", "translate stdin, one sentence per line");
  translate_command->add_option("--model", model_path, "checkpoint or run folder")->required();
  add_decoding_flags(translate_command, decoding, kv_cache);
  add_threads(translate_command);

  // export
  seq2seq::DataSettings export_data;
  std::string export_dir;
  CLI::App* export_command = app.add_subcommand("export", "write a built-in task's splits as TSV corpus files");
  add_task_flags(export_command, export_data);
  export_command->add_option("--out", export_dir, "folder for train.tsv, valid.tsv and test.tsv")->required();
  add_threads(export_command);

  // dump
  std::string batch_path, out_path;
  CLI::App* dump_command = app.add_subcommand("dump", "logits, loss and every parameter's gradient on one batch");
  dump_command->add_option("--model", model_path, "model checkpoint (.safetensors with a config)")->required();
  dump_command->add_option("--batch", batch_path, "batch (.safetensors with int64 src, tgt_in, tgt_out)")->required();
  dump_command->add_option("--out", out_path, "where to write logits, loss and grad.<name>")->required();
  add_threads(dump_command);

  CLI11_PARSE(app, argc, argv);
  if (*train_command && !resume.empty()) {
    // A resumed run keeps its saved model and recipe; how long it goes on and the threads of the
    // machine it runs on may change.
    for (const CLI::Option* option : train_command->get_options()) {
      const std::string name = option->get_name();
      if (option->count() > 0 && name != "--resume" && name != "--steps" && name != "--max-minutes" &&
          name != "--threads" && name != "--max-bad-steps" && name != "--check-nan" && name != "--help") {
        std::fprintf(stderr,
                     "seq2seq train: %s cannot change a resumed run (only --steps, --max-minutes, --threads, "
                     "--max-bad-steps and --check-nan can)\n",
                     name.c_str());
        return 2;
      }
    }
  }
  decoding.kv_cache = kv_cache == "on";
  const int rank = xgrad::distributed::rank();
  if (!*train_command && rank > 0) return 0;  // only training is data-parallel: rank 0 does the rest
  if (threads && !*train_command) xgrad::set_num_threads(*threads);  // train sets its own, after reading a resumed run
  try {
    overrides.threads = threads;
    if (*train_command) return seq2seq::train_command(train, resume, overrides);
    if (*eval_command) return seq2seq::eval_command(model_path, test_file, split, decoding, limit);
    if (*translate_command) return seq2seq::translate_command(model_path, decoding);
    if (*export_command) return seq2seq::export_command(export_data, export_dir);
    if (*dump_command) return seq2seq::dump_command(model_path, batch_path, out_path);
  } catch (const std::exception& e) {
    // Under mpirun the other ranks may be waiting for this one: end them all, naming it.
    if (xgrad::distributed::world_size() > 1) xgrad::distributed::abort(std::string("seq2seq: ") + e.what());
    std::fprintf(stderr, "seq2seq: %s\n", e.what());
    return 1;
  }
  return 0;
}
