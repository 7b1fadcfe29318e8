// `seq2seq train`: the paper's training recipe on a built-in task or the user's corpus, with a
// progress bar, validation, metrics in JSONL, curves in SVG, and checkpoints that resume exactly.
#include "seq2seq.hpp"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include <sys/resource.h>

#include <fmt/format.h>

#include <xgrad/autograd/autograd.hpp>
#include <xgrad/distributed/data_parallel.hpp>
#include <xgrad/nn/safetensors.hpp>
#include <xgrad/optim/optim.hpp>
#include <xgrad/training/metrics_log.hpp>
#include <xgrad/training/run_folder.hpp>
#include <xgrad/training/run_lock.hpp>
#include <xgrad/training/stop_signals.hpp>
#include <xgrad/utils/atomic_file.hpp>
#include <xgrad/utils/progress.hpp>

namespace seq2seq {

namespace fs = std::filesystem;
using xgrad::Error;

namespace {

/// The curves drawn to curves.svg from metrics.jsonl.
const std::vector<xgrad::training::CurveChart> kCurves = {
    {"Loss", "cross-entropy (nats/token)", {{"train (label-smoothed)", "train", "loss"}, {"valid", "valid", "loss"}}, true},
    {"Validation",
     "score",
     {{"exact match %", "valid", "exact_match", 100.0}, {"BLEU", "valid", "bleu"}, {"chrF", "valid", "chrf"}},
     false},
    {"Learning rate", "lr", {{"lr", "train", "lr"}}, false},
};

/// A flat JSON object's numbers and texts as a metrics line.
xgrad::training::Metrics to_metrics(const Json& object) {
  xgrad::training::Metrics values;
  for (const auto& [name, value] : object.items()) {
    if (value.is_number_integer()) values.emplace_back(name, value.get<std::int64_t>());
    else if (value.is_number()) values.emplace_back(name, value.get<double>());
    else if (value.is_string()) values.emplace_back(name, value.get<std::string>());
  }
  return values;
}

/// The process's peak resident memory so far, in MiB (Linux reports it in KiB).
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;
}

const char* non_finite_name(double value) { return std::isnan(value) ? "NaN" : value > 0 ? "inf" : "-inf"; }

std::size_t parameter_count(const xgrad::nn::Module& model) {
  std::size_t n = 0;
  for (const xgrad::Tensor& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace

int train_command(TrainSettings s, const std::string& resume_dir, const TrainOverrides& overrides) {
  const std::optional<int>& threads = overrides.threads;
  namespace dist = xgrad::distributed;
  // Under mpirun every rank runs this; rank 0 alone prints, logs and saves. The run folder and
  // the corpus are read by every rank at the same path (one machine, or a shared filesystem).
  const bool lead = dist::rank() == 0;
  const int ranks = dist::world_size();
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> silent(lead ? nullptr : std::fopen("/dev/null", "w"),
                                                                 &std::fclose);
  std::FILE* out = lead ? stderr : silent.get();
  bool resuming = !resume_dir.empty();
  if (resuming) {
    const std::optional<TrainSettings> saved = TrainSettings::load(resume_dir);
    if (!saved) throw Error(fmt::format("--resume: '{}' is not a run folder (no readable args.json)", resume_dir));
    s = *saved;
    s.run_dir = resume_dir;
    const int run_threads = s.threads > 0 ? s.threads : xgrad::get_num_threads();  // 0: every core, here
    if (threads && *threads != run_threads) {
      std::fprintf(out,
                   "seq2seq train: resuming with %d threads where the run had %d: its losses may now differ in "
                   "the last digits from those of an uninterrupted run\n",
                   *threads, run_threads);
    }
    if (!xgrad::training::RunFolder(resume_dir).has_checkpoint()) {
      std::fprintf(out,
                   "seq2seq train: '%s' has no checkpoint yet (the run stopped before its first save): starting it "
                   "again from step 0 with its saved settings\n",
                   resume_dir.c_str());
      resuming = false;
    }
  }
  if (threads) s.threads = *threads;
  if (overrides.steps) s.steps = *overrides.steps;
  if (overrides.max_minutes) s.max_minutes = *overrides.max_minutes;
  if (overrides.max_bad_steps) s.max_bad_steps = *overrides.max_bad_steps;
  if (overrides.check_nan) s.check_nan = true;
  s.validate();
  const fs::path run(s.run_dir);
  const xgrad::training::RunFolder run_folder(s.run_dir);
  // One process trains a run at a time (rank 0 of a data-parallel run holds the lock).
  std::optional<xgrad::training::RunLock> lock;
  if (lead) {
    lock.emplace(s.run_dir);
    run_folder.remove_leftovers();  // of a process killed while it wrote
  }
  if (!resuming && fs::exists(run / "last")) {
    throw Error(fmt::format("'{}' already holds a run: continue it with --resume {} or choose another --run-dir",
                            s.run_dir, s.run_dir));
  }
  if (s.best_metric.empty()) s.best_metric = s.data.user_corpus() ? "chrf" : "exact_match";
  if (s.accumulate == 0) throw Error("--accumulate must be at least 1");
  if (s.valid_every == 0) throw Error("--valid-every must be at least 1");
  Scores{}.metric(s.best_metric);  // rejects an unknown name before any work

  if (s.threads > 0) xgrad::set_num_threads(s.threads);
  else if (ranks > 1) xgrad::set_num_threads(dist::default_threads());  // the machine's cores shared out
  const xgrad::RuntimeInfo kernels = xgrad::runtime_info();
  std::fprintf(out, "seq2seq: %s\n", kernels.summary().c_str());
  for (const std::string& warning : kernels.warnings) std::fprintf(out, "seq2seq: warning: %s\n", warning.c_str());
  const xgrad::Precision products = xgrad::precision_from_name(s.precision);
  if (products == xgrad::Precision::bf16) {
    std::fprintf(out, "seq2seq: %sbf16 here is %s\n", kernels.bf16_native ? "" : "warning: ", kernels.bf16.c_str());
  }
  if (ranks > 1) {
    std::fprintf(out, "seq2seq: data-parallel over %d ranks (%d on this machine), threads per rank: %d\n", ranks,
                 dist::local_size(), xgrad::get_num_threads());
  }
  xgrad::manual_seed(s.seed);

  // Data and tokenizer: a resumed run keeps its own vocabulary.
  const xgrad::data::Splits splits = load_splits(s.data);
  std::string last_checkpoint;
  std::shared_ptr<const xgrad::data::Tokenizer> tokenizer;
  if (resuming) {
    last_checkpoint = xgrad::training::resolve_checkpoint(run_folder.last());
    tokenizer = xgrad::data::load_tokenizer(last_checkpoint);
  } else if (ranks == 1) {
    tokenizer = build_tokenizer(s.data, splits.train);
  } else {
    // Rank 0 builds the vocabulary (a trained SentencePiece model need not come out the same
    // twice) and the others read it from the run folder.
    const std::string shared = (run / "tokenizer").string();
    if (lead) {
      tokenizer = build_tokenizer(s.data, splits.train);
      fs::create_directories(shared);
      tokenizer->save(shared);
    }
    dist::barrier();
    if (!lead) tokenizer = xgrad::data::load_tokenizer(shared);
  }
  const xgrad::models::TransformerConfig config = s.model.config(tokenizer->vocab_size());
  auto model = std::make_shared<xgrad::models::Transformer>(config);
  if (s.embedding_init == "scaled") {
    model->rescale_embedding_init();
  } else if (s.embedding_init != "unit") {
    throw Error(fmt::format("--embedding-init must be scaled or unit, not '{}'", s.embedding_init));
  }
  const auto train_pairs = encode_pairs(*tokenizer, splits.train, config.max_len, "training");

  xgrad::optim::Adam optimizer(model->parameters(),
                               xgrad::optim::AdamOptions(1.0).betas({s.beta1, s.beta2}).eps(s.eps));
  xgrad::optim::NoamLR scheduler(optimizer, static_cast<std::int64_t>(config.d_model), s.warmup, s.lr_factor);
  xgrad::data::BatchSamplerOptions sampling;
  sampling.batch_tokens = s.data.batch_tokens;
  sampling.seed = s.seed;
  sampling.rank = static_cast<std::size_t>(dist::rank());
  sampling.world_size = static_cast<std::size_t>(ranks);
  xgrad::data::BatchSampler sampler(train_pairs, sampling);

  xgrad::training::TrainingState state;
  xgrad::training::MetricsLog metrics((run / "metrics.jsonl").string());
  if (resuming) {
    const xgrad::safetensors::File weights = xgrad::safetensors::read(last_checkpoint + "/model.safetensors");
    xgrad::nn::StateDict dict(weights.tensors().begin(), weights.tensors().end());
    model->load_state_dict(dict);
    state = xgrad::training::load_training_state(last_checkpoint);
    state.restore(optimizer, scheduler, sampler);
    if (lead) metrics.resume_at(state.step);  // the steps after the checkpoint are done again
    if (!state.rank_rngs.empty() && state.rank_rngs.size() != static_cast<std::size_t>(ranks)) {
      std::fprintf(out,
                   "seq2seq: the run was trained on %zu ranks and continues on %d: its batches and dropout now "
                   "differ from those an uninterrupted run would have drawn\n",
                   state.rank_rngs.size(), ranks);
    }
    std::fprintf(out, "seq2seq: resuming %s at step %lld (epoch %zu, batch %zu)\n", s.run_dir.c_str(),
                 static_cast<long long>(state.step), state.epoch, state.position);
  } else if (lead) {
    fs::create_directories(run);
    s.save(s.run_dir);
    metrics.start();
  }
  // Dropout draws differently on every rank; rank 0 draws as one process would.
  if (dist::rank() > 0 && !resuming) xgrad::default_generator().manual_seed(s.seed + 1000003ull * dist::rank());
  // Every rank starts from rank 0's weights and ends each backward with the gradient of the
  // global batch: the ranks' losses are weighted by their share of its target tokens (summed).
  xgrad::distributed::DataParallelOptions parallel;
  parallel.reduce = dist::ReduceOp::sum;
  dist::DataParallel ddp(*model, parallel);
  std::fprintf(out,
               "seq2seq: %s: %zu training pairs, %zu validation pairs, vocabulary %zu (%s)\n"
               "seq2seq: Transformer %s: d_model %zu, %zu heads, %zu+%zu layers, d_ff %zu, %s positions: %.2fM "
               "parameters\n",
               s.data.user_corpus() ? s.data.train_file.c_str() : s.data.task.c_str(), train_pairs.size(),
               splits.valid.size(), tokenizer->vocab_size(), tokenizer->kind().c_str(), s.model.preset.c_str(),
               config.d_model, config.nhead, config.num_encoder_layers, config.num_decoder_layers,
               config.dim_feedforward, config.positional.c_str(), parameter_count(*model) / 1e6);

  DecodeSettings decoding;
  decoding.batch_tokens = std::max<std::size_t>(s.data.batch_tokens, 1024);
  const std::vector<xgrad::Tensor> parameters = model->parameters();
  auto save = [&](bool is_best) {  // every rank: the capture gathers the ranks' generators
    state.capture(optimizer, scheduler, sampler);
    if (lead) {
      run_folder.save(*model, state, is_best, [&](const std::string& checkpoint) { tokenizer->save(checkpoint); });
    }
  };

  // Training time: what earlier processes of this run spent, plus this one's.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  const double previous_elapsed = state.elapsed_seconds;
  auto elapsed = [&] { return previous_elapsed + std::chrono::duration<double>(Clock::now() - start).count(); };

  xgrad::utils::ProgressBar bar(s.steps, "train", out);
  bar.set_unit_name("tok");
  // Validation runs on rank 0; the other ranks sleep in a barrier meanwhile.
  auto validate = [&]() -> bool {
    bool is_best = false, goal = false;
    if (lead) {
      model->eval();
      const Scores scores = evaluate(*model, *tokenizer, splits.valid, s.valid_decode, decoding);
      model->train();
      Json line = scores.to_json();
      line["elapsed_s"] = elapsed();
      metrics.log("valid", state.step, to_metrics(line));
      const double value = scores.metric(s.best_metric);
      // A model whose validation loss is not finite is never the best, whatever its scores.
      is_best = std::isfinite(scores.loss) && std::isfinite(value) &&
                (state.best_step < 0 || value > state.best_value);
      if (is_best) state.best_value = value, state.best_step = state.step;
      goal = s.stop_at > 0 && value >= s.stop_at;
      bar.message(fmt::format("valid step {}: loss {:.3f}  ppl {:.2f}  token acc {:.2f}%  exact {:.2f}%  BLEU {:.2f}  "
                              "chrF {:.2f}{}",
                              state.step, scores.loss, scores.perplexity, 100 * scores.token_accuracy,
                              100 * scores.exact_match, scores.bleu, scores.chrf, is_best ? "  (best)" : ""));
    }
    dist::barrier();
    state.elapsed_seconds = elapsed();
    save(is_best);
    if (lead) xgrad::training::draw_curves(metrics, (run / "curves.svg").string(), kCurves);
    dist::barrier();
    return dist::all_reduce(goal ? 1.0 : 0.0, dist::ReduceOp::max) > 0;  // rank 0's verdict, for all
  };

  const std::int64_t first_step = state.step;
  // From here Ctrl-C (or SIGTERM) on any rank stops the run after the current step, saved; a
  // second one kills. Taken by a thread of its own, never by a thread that computes.
  const xgrad::training::StopSignals stop_signals;
  bool interrupted = false;
  model->train();
  std::size_t bad_steps = 0;  // consecutive steps skipped for a non-finite loss or gradient
  // A run resumed from the checkpoint its last validation saved need not validate it again.
  bool validated = resuming && dist::all_reduce(lead && metrics.latest_is("valid", state.step) ? 1.0 : 0.0,
                                                 dist::ReduceOp::max) > 0;
  bool reached = false;
  std::string stop_reason = fmt::format("{} steps done", s.steps);
  while (state.step < static_cast<std::int64_t>(s.steps)) {
    // A stop (Ctrl-C, the time limit) is agreed between the ranks, so that all stop at one step.
    const bool time_up = s.max_minutes > 0 && elapsed() >= 60.0 * s.max_minutes;
    const double stop = dist::all_reduce(stop_signals.requested() ? 2.0 : time_up ? 1.0 : 0.0, dist::ReduceOp::max);
    if (stop == 2.0) {
      interrupted = true;
      break;
    }
    if (stop == 1.0) {
      stop_reason = fmt::format("time limit of {:g} minutes reached", s.max_minutes);
      break;
    }
    // One optimizer step over `accumulate` batches on each rank, each weighted by its share of
    // the target tokens of all of them: the loss is the mean over the global batch's tokens.
    std::vector<xgrad::data::Batch> batches;
    std::size_t local_tokens = 0;
    for (std::size_t i = 0; i < s.accumulate; ++i) {
      batches.push_back(sampler.next());
      local_tokens += batches.back().target_tokens;
    }
    const double tokens = dist::all_reduce(double(local_tokens));
    optimizer.zero_grad();
    double loss = 0;
    try {
      std::optional<xgrad::DetectAnomalyGuard> anomaly;  // --check-nan: every op checked
      if (s.check_nan) anomaly.emplace();
      for (std::size_t i = 0; i < batches.size(); ++i) {
        const xgrad::data::Batch& batch = batches[i];
        const double weight = double(batch.target_tokens) / tokens;
        xgrad::autocast precision(products);  // the products of forward and backward
        const xgrad::Tensor batch_loss = model->loss(batch.src, batch.tgt_in, batch.tgt_out, s.label_smoothing);
        if (i + 1 < batches.size()) {  // the ranks' gradients are summed once, after the last batch
          auto local_only = ddp.no_sync();
          (batch_loss * static_cast<float>(weight)).backward();
        } else {
          (batch_loss * static_cast<float>(weight)).backward();
        }
        loss += weight * batch_loss.item();
      }
    } catch (const Error& e) {
      throw Error(fmt::format("step {}: {}", state.step + 1, e.what()));
    }
    loss = dist::all_reduce(loss);
    // The loss and the gradients' norm, checked every step (the norm is one pass over the
    // gradients, and the same on every rank): a step that is not finite is left out.
    const double grad_norm = s.clip_norm > 0 ? xgrad::optim::clip_grad_norm_(parameters, s.clip_norm)
                                             : xgrad::optim::grad_norm(parameters);
    const double lr = optimizer.lr();
    const bool finite = std::isfinite(loss) && std::isfinite(grad_norm);
    if (finite) {
      optimizer.step();
      scheduler.step();
      bad_steps = 0;
    } else {
      ++bad_steps;
      ++state.skipped_steps;
    }
    ++state.step;

    xgrad::training::Metrics line = {{"loss", loss},
                                     {"lr", lr},
                                     {"tokens", static_cast<std::int64_t>(tokens)},
                                     {"epoch", static_cast<std::int64_t>(sampler.epoch())},
                                     {"grad_norm", grad_norm},
                                     {"peak_rss_mib", peak_rss_mib()}};
    if (state.skipped_steps > 0) line.emplace_back("skipped_steps", state.skipped_steps);
    if (!finite) {
      line.emplace_back("skipped", std::int64_t(1));
      bar.message(fmt::format("warning: step {}: the {} is {}: step skipped, weights and optimizer unchanged ({} in a "
                              "row; {} stop the run)",
                              state.step, std::isfinite(loss) ? "gradient norm" : "loss",
                              non_finite_name(std::isfinite(loss) ? grad_norm : loss), bad_steps, s.max_bad_steps));
    }
    if (lead) metrics.log("train", state.step, line);
    if (bad_steps >= s.max_bad_steps) {
      bar.finish();
      throw Error(fmt::format("step {}: {} steps in a row had a non-finite loss or gradient norm (--max-bad-steps {}): "
                              "stopping; try a lower --lr-factor, --clip-norm, or --check-nan to name the op that "
                              "makes the first NaN or Inf",
                              state.step, bad_steps, s.max_bad_steps));
    }
    if (s.max_minutes > 0) {
      // The run ends at the step count or the time limit, whichever comes first: aim the bar
      // (and its ETA) at the step the limit will be reached at, at this process's pace.
      const double seconds = elapsed() - previous_elapsed;
      const double per_second = double(state.step - first_step) / std::max(seconds, 1e-9);
      const double left = std::max(0.0, 60.0 * s.max_minutes - elapsed());
      const double projected = double(state.step) + per_second * left;
      bar.set_total(static_cast<std::size_t>(std::min(double(s.steps), std::ceil(projected))));
    }
    bar.update(static_cast<std::size_t>(state.step),
               fmt::format("epoch {} ({:.0f}%) loss {:.3f} lr {:.2e}", sampler.epoch() + 1,
                           100.0 * double(sampler.position()) / double(sampler.batches_in_epoch()), loss, lr),
               double(tokens));
    validated = false;
    if (state.step % static_cast<std::int64_t>(s.valid_every) == 0) {
      validated = true;
      if (validate()) {
        reached = true;
        stop_reason = fmt::format("{} reached {:g}", s.best_metric, s.stop_at);
        break;
      }
    }
  }
  if (interrupted) {
    bar.finish();
    state.elapsed_seconds = elapsed();
    save(false);
    std::fprintf(out, "seq2seq: interrupted: saved step %lld to %s/last; continue with --resume %s\n",
                 static_cast<long long>(state.step), s.run_dir.c_str(), s.run_dir.c_str());
    return 130;
  }
  if (!validated && !reached) validate();
  bar.finish();
  if (!lead) return 0;  // the rest is rank 0's: the report and the test split
  std::fprintf(stderr, "seq2seq: stopped at step %lld: %s, after %s of training (%s in this process)\n",
               static_cast<long long>(state.step), stop_reason.c_str(),
               xgrad::utils::format_duration(elapsed()).c_str(),
               xgrad::utils::format_duration(elapsed() - previous_elapsed).c_str());
  std::fprintf(stderr, "seq2seq: best %s %.4g at step %lld; metrics in %s/metrics.jsonl, curves in %s/curves.svg\n",
               s.best_metric.c_str(), s.best_metric == "loss" ? -state.best_value : state.best_value,
               static_cast<long long>(state.best_step), s.run_dir.c_str(), s.run_dir.c_str());

  // The held-out test split, scored with the best checkpoint.
  if (!splits.test.empty()) {
    Checkpoint best = load_checkpoint(s.run_dir);
    const Scores test = evaluate(*best.model, *best.tokenizer, splits.test, splits.test.size(), decoding);
    // Logged once: a finished run resumed (killed while testing, say) scores the same checkpoint.
    if (!metrics.latest_is("test", state.best_step)) metrics.log("test", state.best_step, to_metrics(test.to_json()));
    std::printf("test (%zu pairs, checkpoint of step %lld): exact match %.2f%%  BLEU %.2f  chrF %.2f  loss %.3f\n",
                test.pairs, static_cast<long long>(state.best_step), 100 * test.exact_match, test.bleu, test.chrf,
                test.loss);
  }
  return 0;
}

}  // namespace seq2seq
