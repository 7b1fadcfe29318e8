// The run folder: checkpoints as folders of safetensors files, with `last` and `best` as links
// swapped in one rename.
#include "run_folder.hpp"

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/core/generator.hpp>
#include <xgrad/nn/safetensors.hpp>

namespace seq2seq {

namespace fs = std::filesystem;
using xgrad::Error;

namespace {

/// Points `link` at `target` (a relative path) in one step: a new link under a temporary name,
/// renamed over the old one.
void replace_link(const fs::path& link, const fs::path& target) {
  const fs::path temp = link.parent_path() / ("." + link.filename().string() + ".tmp");
  std::error_code ignored;
  fs::remove(temp, ignored);
  std::error_code error;
  fs::create_directory_symlink(target, temp, error);
  if (!error) fs::rename(temp, link, error);
  if (error) throw Error(fmt::format("run folder: cannot point '{}' at '{}': {}", link.string(), target.string(),
                                     error.message()));
}

/// The checkpoint folder a link points at, or "" when there is no such link.
std::string link_target(const fs::path& link) {
  std::error_code error;
  if (!fs::is_symlink(link, error)) return "";
  return fs::read_symlink(link, error).filename().string();
}

std::map<std::string, xgrad::Array> prefixed(const xgrad::optim::StateDict& dict, const std::string& prefix) {
  std::map<std::string, xgrad::Array> out;
  for (const auto& [name, value] : dict) out.emplace(prefix + name, value);
  return out;
}

}  // namespace

void save_checkpoint(const std::string& run_dir, const xgrad::models::Transformer& model,
                     const xgrad::data::Tokenizer& tokenizer, const TrainingState& state, bool is_best) {
  const fs::path run(run_dir);
  const std::string name = fmt::format("step-{:07d}", state.step);
  const fs::path dir = run / "checkpoints" / name;
  fs::create_directories(dir);
  xgrad::models::save_model(model, (dir / "model.safetensors").string());
  tokenizer.save(dir.string());

  std::map<std::string, xgrad::Array> tensors = prefixed(state.optimizer, "optimizer.");
  tensors.merge(prefixed(state.scheduler, "scheduler."));
  const std::map<std::string, xgrad::Indices> counters{
      {"step", xgrad::Indices({state.step})},
      {"epoch", xgrad::Indices({static_cast<std::int64_t>(state.epoch)})},
      {"position", xgrad::Indices({static_cast<std::int64_t>(state.position)})},
      {"best_step", xgrad::Indices({state.best_step})}};
  const std::map<std::string, std::string> metadata{{"rng", state.rng},
                                                    {"best_value", fmt::format("{:.17g}", state.best_value)},
                                                    {"elapsed_seconds", fmt::format("{:.17g}", state.elapsed_seconds)}};
  xgrad::safetensors::write((dir / "state.safetensors").string(), tensors, counters, metadata);

  replace_link(run / "last", fs::path("checkpoints") / name);
  if (is_best) replace_link(run / "best", fs::path("checkpoints") / name);

  // Keep only what the links point at.
  const std::set<std::string> kept{link_target(run / "last"), link_target(run / "best")};
  for (const auto& entry : fs::directory_iterator(run / "checkpoints")) {
    if (kept.count(entry.path().filename().string()) == 0) fs::remove_all(entry.path());
  }
}

TrainingState load_training_state(const std::string& checkpoint_dir) {
  const std::string path = (fs::path(checkpoint_dir) / "state.safetensors").string();
  const xgrad::safetensors::File file = xgrad::safetensors::read(path);
  TrainingState state;
  auto counter = [&](const char* name) {
    const xgrad::Indices& value = file.get_indices(name);
    if (value.size() != 1) throw Error(fmt::format("'{}': '{}' must hold one number", path, name));
    return value(0);
  };
  auto meta = [&](const char* name) {
    const auto it = file.metadata().find(name);
    if (it == file.metadata().end()) throw Error(fmt::format("'{}': no metadata '{}'", path, name));
    return it->second;
  };
  state.step = counter("step");
  state.epoch = static_cast<std::size_t>(counter("epoch"));
  state.position = static_cast<std::size_t>(counter("position"));
  state.best_step = counter("best_step");
  state.rng = meta("rng");
  state.best_value = std::stod(meta("best_value"));
  state.elapsed_seconds = std::stod(meta("elapsed_seconds"));
  for (const auto& [name, value] : file.tensors()) {
    if (name.rfind("optimizer.", 0) == 0) state.optimizer.emplace(name.substr(10), value);
    else if (name.rfind("scheduler.", 0) == 0) state.scheduler.emplace(name.substr(10), value);
    else throw Error(fmt::format("'{}': unexpected tensor '{}'", path, name));
  }
  return state;
}

std::string resolve_checkpoint(const std::string& path) {
  const fs::path p(path);
  std::error_code error;
  if (!fs::exists(p, error)) throw Error(fmt::format("checkpoint '{}' does not exist", path));
  if (fs::is_regular_file(p / "model.safetensors", error)) return path;
  for (const char* link : {"best", "last"}) {
    if (fs::is_regular_file(p / link / "model.safetensors", error)) return (p / link).string();
  }
  throw Error(fmt::format("'{}' is neither a checkpoint folder (with model.safetensors) nor a run folder "
                          "(with best/ or last/)",
                          path));
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint checkpoint;
  checkpoint.dir = resolve_checkpoint(path);
  checkpoint.model = xgrad::models::load_model((fs::path(checkpoint.dir) / "model.safetensors").string());
  checkpoint.model->eval();
  checkpoint.tokenizer = xgrad::data::load_tokenizer(checkpoint.dir);
  const auto& config = checkpoint.model->config();
  const std::size_t vocab = checkpoint.tokenizer->vocab_size();
  if (vocab != config.src_vocab || vocab != config.tgt_vocab) {
    throw Error(fmt::format("'{}': the tokenizer has {} tokens but the model's vocabularies have {} (source) and {} "
                            "(target): they do not belong together",
                            checkpoint.dir, vocab, config.src_vocab, config.tgt_vocab));
  }
  return checkpoint;
}

}  // namespace seq2seq
