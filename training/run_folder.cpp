// The run folder: checkpoints as folders of safetensors files, with `last` and `best` as links
// swapped in one rename.
#include <xgrad/training/run_folder.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/core/generator.hpp>
#include <xgrad/distributed/distributed.hpp>
#include <xgrad/nn/safetensors.hpp>
#include <xgrad/utils/atomic_file.hpp>

namespace xgrad::training {

namespace fs = std::filesystem;

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

std::map<std::string, Array> prefixed(const optim::StateDict& dict, const std::string& prefix) {
  std::map<std::string, Array> out;
  for (const auto& [name, value] : dict) out.emplace(prefix + name, value);
  return out;
}

}  // namespace

std::string RunFolder::checkpoint_dir(std::int64_t step) const {
  const fs::path dir = fs::path(dir_) / "checkpoints" / fmt::format("step-{:07d}", step);
  fs::create_directories(dir);
  return dir.string();
}

bool RunFolder::has_checkpoint() const {
  std::error_code error;
  return fs::exists(fs::symlink_status(fs::path(dir_) / "last", error));
}

std::string RunFolder::last() const { return (fs::path(dir_) / "last").string(); }

void RunFolder::commit(const std::string& checkpoint, const TrainingState& state, bool is_best) const {
  const fs::path run(dir_), dir(checkpoint);
  const std::string name = dir.filename().string();
  std::map<std::string, Array> tensors = prefixed(state.optimizer, "optimizer.");
  tensors.merge(prefixed(state.scheduler, "scheduler."));
  const std::map<std::string, Indices> counters{
      {"step", Indices({state.step})},
      {"epoch", Indices({static_cast<std::int64_t>(state.epoch)})},
      {"position", Indices({static_cast<std::int64_t>(state.position)})},
      {"best_step", Indices({state.best_step})},
      {"skipped_steps", Indices({state.skipped_steps})}};
  std::map<std::string, std::string> metadata{{"rng", state.rng},
                                              {"best_value", fmt::format("{:.17g}", state.best_value)},
                                              {"elapsed_seconds", fmt::format("{:.17g}", state.elapsed_seconds)}};
  if (!state.rank_rngs.empty()) {
    metadata["world_size"] = std::to_string(state.rank_rngs.size());
    for (std::size_t r = 0; r < state.rank_rngs.size(); ++r) metadata[fmt::format("rng.rank{}", r)] = state.rank_rngs[r];
  }
  safetensors::write((dir / "state.safetensors").string(), tensors, counters, metadata);

  // `best` first: killed between the two, `last` still names the previous checkpoint, whose
  // state the resumed run continues from, and `best` a complete one.
  if (is_best) replace_link(run / "best", fs::path("checkpoints") / name);
  replace_link(run / "last", fs::path("checkpoints") / name);

  remove_unlinked_checkpoints();
}

std::set<std::string> RunFolder::linked_checkpoints() const {
  const fs::path run(dir_);
  return {link_target(run / "last"), link_target(run / "best")};
}

std::size_t RunFolder::remove_unlinked_checkpoints(std::error_code* error) const {
  const std::set<std::string> kept = linked_checkpoints();
  std::vector<fs::path> unlinked;
  std::error_code missing;  // no checkpoints/ folder yet: nothing to remove
  for (const auto& entry : fs::directory_iterator(fs::path(dir_) / "checkpoints", missing)) {
    if (kept.count(entry.path().filename().string()) == 0) unlinked.push_back(entry.path());
  }
  for (const fs::path& path : unlinked) error ? fs::remove_all(path, *error) : fs::remove_all(path);
  return unlinked.size();
}

std::size_t RunFolder::remove_leftovers() const {
  // Temporary files of AtomicFile, and links replace_link() had not yet renamed (".last.tmp").
  auto temporary = [](const fs::path& path) {
    const std::string name = path.filename().string();
    return utils::AtomicFile::is_temporary_name(name) ||
           (name.size() >= 4 && name[0] == '.' && name.compare(name.size() - 4, 4, ".tmp") == 0);
  };
  std::vector<fs::path> doomed;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir_, error)) {
    if (temporary(entry.path())) doomed.push_back(entry.path());
  }
  for (const std::string& name : linked_checkpoints()) {
    if (name.empty()) continue;
    for (const auto& file : fs::directory_iterator(fs::path(dir_) / "checkpoints" / name, error)) {
      if (temporary(file.path())) doomed.push_back(file.path());
    }
  }
  for (const fs::path& path : doomed) fs::remove_all(path, error);
  return doomed.size() + remove_unlinked_checkpoints(&error);
}

void RunFolder::discard_unless_linked(const std::string& checkpoint) const noexcept {
  if (linked_checkpoints().count(fs::path(checkpoint).filename().string()) > 0) return;
  std::error_code ignored;
  fs::remove_all(checkpoint, ignored);
}

TrainingState load_training_state(const std::string& checkpoint_dir) {
  const std::string path = (fs::path(checkpoint_dir) / "state.safetensors").string();
  safetensors::File file = safetensors::read(path);
  TrainingState state;
  auto counter = [&](const char* name) {
    const Indices& value = file.get_indices(name);
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
  if (file.contains("skipped_steps")) state.skipped_steps = counter("skipped_steps");  // older checkpoints: none
  state.rng = meta("rng");
  auto number = [&](const char* name) {  // a metadata value that must be a number
    const std::string text = meta(name);
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') {
      throw Error(fmt::format("'{}': metadata '{}' must be a number, not '{}'", path, name, printable(text, 40)));
    }
    return value;
  };
  if (file.metadata().count("world_size")) {
    const double ranks = number("world_size");
    if (ranks < 1 || ranks > 65536 || ranks != std::floor(ranks)) {
      throw Error(fmt::format("'{}': metadata 'world_size' must be a whole number of ranks in 1..65536, not {}",
                              path, ranks));
    }
    const int world = static_cast<int>(ranks);
    for (int r = 0; r < world; ++r) state.rank_rngs.push_back(meta(fmt::format("rng.rank{}", r).c_str()));
  }
  state.best_value = number("best_value");
  state.elapsed_seconds = number("elapsed_seconds");
  for (auto& [name, value] : std::move(file).take_tensors()) {  // the file's arrays, not copies of them
    if (name.rfind("optimizer.", 0) == 0) state.optimizer.emplace(name.substr(10), std::move(value));
    else if (name.rfind("scheduler.", 0) == 0) state.scheduler.emplace(name.substr(10), std::move(value));
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

void TrainingState::capture(const optim::Optimizer& optimizer_, const optim::LRScheduler& scheduler_,
                            const data::BatchSampler& sampler) {
  epoch = sampler.epoch();
  position = sampler.position();
  rng = default_generator().state();
  rank_rngs.clear();
  if (distributed::world_size() > 1) {
    rank_rngs = distributed::all_gather(rng);
    rng = rank_rngs[0];
  }
  optimizer = optimizer_.state_dict();
  scheduler = scheduler_.state_dict();
}

void TrainingState::restore(optim::Optimizer& optimizer_, optim::LRScheduler& scheduler_,
                            data::BatchSampler& sampler) const {
  optimizer_.load_state_dict(optimizer);
  scheduler_.load_state_dict(scheduler);
  sampler.seek(epoch, position);
  const auto rank = static_cast<std::size_t>(distributed::rank());
  if (distributed::world_size() > 1 && rank_rngs.size() == static_cast<std::size_t>(distributed::world_size())) {
    default_generator().set_state(rank_rngs[rank]);
  } else {
    default_generator().set_state(rng);
    // Another number of ranks than the run had: the others draw from streams of their own.
    if (rank > 0) default_generator().manual_seed(std::hash<std::string>{}(rng) + rank);
  }
}

}  // namespace xgrad::training
