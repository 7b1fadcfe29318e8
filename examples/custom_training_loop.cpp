// A training loop written with the raw API: the Transformer learns to reverse strings.
// Every step is in view: batches, forward, loss, backward, clipping, the optimizer step, the
// learning-rate schedule, validation by greedy decoding, metrics.jsonl and curves.svg, and
// checkpoints in a run folder from which a second run continues exactly where the first stopped
// (Ctrl-C finishes the step and saves).
//
//   build/bin/custom_training_loop [steps] [run folder]     (again with more steps: it resumes)
#include <xgrad/xgrad.hpp>
#include <xgrad/data/batching.hpp>
#include <xgrad/data/tasks.hpp>
#include <xgrad/data/tokenizer.hpp>
#include <xgrad/training/metrics_log.hpp>
#include <xgrad/training/run_folder.hpp>
#include <xgrad/training/run_lock.hpp>
#include <xgrad/training/stop_signals.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

using namespace xgrad;
using data::Tokenizer;

/// Greedy translations of the first `n` pairs, and the fraction that equal their targets.
double exact_match(const models::Transformer& model, const Tokenizer& tokenizer,
                   const std::vector<data::Example>& pairs, std::size_t n) {
  std::size_t correct = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::int64_t> ids = tokenizer.encode(pairs[i].source);
    ids.push_back(Tokenizer::eos_id);
    Indices src = Indices::from_shape({1, ids.size()});  // (1, S)
    std::copy(ids.begin(), ids.end(), src.begin());
    Indices out = models::greedy_decode(model, src, Tokenizer::bos_id, Tokenizer::eos_id, ids.size() + 2);
    std::vector<std::int64_t> tokens(out.begin(), out.end());
    correct += tokenizer.decode(tokens) == pairs[i].target;  // decode drops EOS and padding
  }
  return double(correct) / double(n);
}

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::stoi(argv[1]) : 1500;
  const training::RunFolder run(argc > 2 ? argv[2] : "runs/reverse");
  const training::RunLock lock(run.dir());  // one process per run folder, for this one's life
  run.remove_leftovers();                   // of a process killed while it wrote
  manual_seed(0);

  // Data: a built-in task, a character vocabulary, and batches of about 2000 padded tokens.
  data::TaskSizes sizes;
  sizes.train = 5000, sizes.valid = 100, sizes.test = 0;
  const data::Splits splits = data::make_task("reverse", /*seed=*/0, sizes);
  std::vector<std::string> texts;
  for (const data::Example& pair : splits.train) texts.push_back(pair.source), texts.push_back(pair.target);
  const data::CharTokenizer tokenizer = data::CharTokenizer::build(texts);
  std::vector<data::EncodedPair> train;
  for (const data::Example& pair : splits.train) {
    train.push_back({tokenizer.encode(pair.source), tokenizer.encode(pair.target)});
  }
  data::BatchSamplerOptions batching;
  batching.batch_tokens = 2000;
  data::BatchSampler batches(train, batching);

  // Model: the "tiny" preset over the shared vocabulary, pre-LN (steadier than the paper's
  // post-LN at a high learning rate), without dropout on so small a task.
  models::TransformerConfig config = models::TransformerConfig::preset("tiny", tokenizer.vocab_size(),
                                                                       tokenizer.vocab_size());
  config.dropout = 0.f;
  config.norm_first = true;
  models::Transformer model(config);
  // Embeddings ~ N(0, 1/D), so that embedding * sqrt(D) is on the scale of the positional
  // encodings (torch.nn.Embedding's N(0, 1) would drown them).
  model.rescale_embedding_init();

  // The paper's optimizer and schedule: Adam(0.9, 0.98, 1e-9), warmup then 1/sqrt(step).
  optim::Adam adam(model.parameters(), optim::AdamOptions(1.0).betas({0.9, 0.98}).eps(1e-9));
  optim::NoamLR schedule(adam, static_cast<std::int64_t>(config.d_model), /*warmup_steps=*/400, /*factor=*/0.5);

  // Resume: the weights, then everything else the next step depends on.
  int first = 1;
  double accuracy = 0, best = -1;
  training::MetricsLog metrics(run.dir() + "/metrics.jsonl");
  if (run.has_checkpoint()) {
    nn::load(model, run.last() + "/model.safetensors");
    const training::TrainingState state = training::load_training_state(run.last());
    state.restore(adam, schedule, batches);  // optimizer, schedule, generator, batch position
    best = state.best_value;
    first = static_cast<int>(state.step) + 1;
    metrics.resume_at(state.step);  // later lines are written again
    std::printf("resuming %s at step %d\n", run.dir().c_str(), first);
  } else {
    std::filesystem::create_directories(run.dir());
    metrics.start();
  }
  auto save = [&](int step) {
    training::TrainingState state;
    state.step = step;
    state.capture(adam, schedule, batches);
    const bool is_best = accuracy > best;
    if (is_best) best = accuracy;
    state.best_value = best;
    run.save(model, state, is_best);  // the model with its config: models::load and PyTorch read it
  };

  // From here Ctrl-C (or SIGTERM) asks the loop to stop after its step: taken by a thread of its
  // own, so that no thread that computes is ever interrupted by a signal handler.
  const training::StopSignals stop;
  for (int step = first; step <= steps; ++step) {
    const data::Batch batch = batches.next();  // src (B, S), tgt_in (B, T), tgt_out (B, T)
    model.train();
    adam.zero_grad();
    Tensor logits = model.forward(batch.src, batch.tgt_in);  // (B, T, V)
    CrossEntropyOptions criterion;
    criterion.ignore_index = Tokenizer::pad_id;
    criterion.label_smoothing = 0.1f;
    Indices targets = batch.tgt_out;
    targets.reshape({targets.size()});
    Tensor loss = cross_entropy(reshape(logits, {-1, static_cast<std::int64_t>(config.tgt_vocab)}), targets,
                                criterion);
    loss.backward();
    const double grad_norm = optim::clip_grad_norm_(model.parameters(), 1.0);
    metrics.log("train", step, {{"loss", loss.item()}, {"lr", adam.lr()}, {"grad_norm", grad_norm}});
    adam.step();
    schedule.step();
    const bool stopping = stop.requested();  // read once: the step saved is the step reported

    if (step % 100 == 0 || step == steps || stopping) {
      model.eval();
      NoGradGuard no_grad;
      accuracy = exact_match(model, tokenizer, splits.valid, 100);
      std::printf("step %4d  loss %.6f  grad norm %.4f  lr %.2e  valid exact match %.0f%%\n", step, loss.item(),
                  grad_norm, adam.lr(), 100 * accuracy);
      metrics.log("valid", step, {{"exact_match", accuracy}});
      save(step);
      training::draw_curves(metrics, run.dir() + "/curves.svg",
                            {{"Loss", "nats/token", {{"train", "train", "loss"}}, true},
                             {"Validation", "exact match %", {{"valid", "valid", "exact_match", 100.0}}, false}});
    }
    if (stopping) {
      std::printf("interrupted: saved step %d in %s; run again to continue\n", step, run.dir().c_str());
      return 130;
    }
  }
  if (first > steps) {  // the run had already gone this far: score what it left
    model.eval();
    NoGradGuard no_grad;
    accuracy = exact_match(model, tokenizer, splits.valid, 100);
    std::printf("step %4d  valid exact match %.0f%%\n", first - 1, 100 * accuracy);
  }
  std::printf("checkpoints in %s (last, best), metrics.jsonl and curves.svg beside them\n", run.dir().c_str());
  return accuracy >= 0.9 ? 0 : 1;  // it should have learnt to reverse
}
