// A training run's folder, for any model and training loop: checkpoints that continue
// bit-identically, `last` and `best` links moved atomically, and the state beyond the weights
// (optimizer, schedule, random generator, data position) that an exact resume needs.
//
//   RUN/checkpoints/step-0000400/model.safetensors   the weights and config (models::save)
//   RUN/checkpoints/step-0000400/state.safetensors   TrainingState
//   RUN/last -> checkpoints/step-0000400             RUN/best -> the best so far
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <system_error>
#include <string>
#include <vector>

#include <xgrad/data/batching.hpp>
#include <xgrad/models/checkpoint.hpp>
#include <xgrad/optim/lr_scheduler.hpp>
#include <xgrad/optim/optimizer.hpp>
#include <xgrad/optim/state_dict.hpp>

namespace xgrad::training {

/// Everything beyond the weights that a resumed run needs to continue exactly.
struct TrainingState {
  std::int64_t step = 0;                // optimizer steps taken
  std::size_t epoch = 0, position = 0;  // the batch sampler's place
  double best_value = 0;                // best validation metric so far
  std::int64_t best_step = -1;          // its step (-1: none yet)
  double elapsed_seconds = 0;           // training time before this process
  std::int64_t skipped_steps = 0;       // steps whose loss or gradient was not finite, left out
  std::string rng;                      // the random generator's state (dropout masks): rank 0's
  std::vector<std::string> rank_rngs;   // in a data-parallel run, every rank's, in rank order
  optim::StateDict optimizer, scheduler;

  /// Takes the optimizer's and the schedule's state, the default generator's, and the batch
  /// sampler's place (step, best and elapsed time are the loop's to set). In a data-parallel run
  /// every rank calls it (it gathers the ranks' generators) and rank 0 saves the result.
  void capture(const optim::Optimizer& optimizer, const optim::LRScheduler& scheduler,
               const data::BatchSampler& sampler);
  /// Puts them back, so that the next step is the one an uninterrupted run would take; each rank
  /// takes its own generator. A run resumed on another number of ranks continues from rank 0's
  /// state, the other ranks' generators seeded from it (no longer bit-identical).
  void restore(optim::Optimizer& optimizer, optim::LRScheduler& scheduler, data::BatchSampler& sampler) const;
};

class RunFolder {
 public:
  explicit RunFolder(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  /// Writes RUN/checkpoints/step-N/ (the model with its config, the state, and what `extra`
  /// writes into the folder, e.g. a tokenizer), points RUN/best at it when `is_best`, then
  /// RUN/last; removes the checkpoints neither link points at. Every file and link is replaced
  /// atomically and `last` moves last, so a save killed at any instant leaves `last` (and `best`)
  /// at a complete checkpoint. A save that fails (a full disk) removes the folder it began,
  /// unless a link points at it, and throws.
  template <class M>
  void save(const M& model, const TrainingState& state, bool is_best,
            const std::function<void(const std::string& checkpoint_dir)>& extra = {}) const {
    const std::string checkpoint = checkpoint_dir(state.step);
    try {
      models::save(model, checkpoint + "/model.safetensors");
      if (extra) extra(checkpoint);
      commit(checkpoint, state, is_best);
    } catch (...) {
      discard_unless_linked(checkpoint);
      throw;
    }
  }

  /// Removes what writes killed midway left behind: temporary files (".NAME.tmp-...") and links
  /// (".last.tmp") in the run folder and its checkpoints, and checkpoint folders no link points
  /// at. Only for the process that holds the run's lock (RunLock). Returns how many it removed.
  std::size_t remove_leftovers() const;

  /// Whether RUN/last exists (a run stopped before its first save has none).
  bool has_checkpoint() const;
  /// The folder RUN/last points at (as a path through the link).
  std::string last() const;

 private:
  std::string checkpoint_dir(std::int64_t step) const;  // created, empty of state
  void commit(const std::string& checkpoint, const TrainingState& state, bool is_best) const;
  void discard_unless_linked(const std::string& checkpoint) const noexcept;
  /// The checkpoint folders `last` and `best` name ("" for a missing link).
  std::set<std::string> linked_checkpoints() const;
  /// Removes the checkpoint folders neither link names; returns how many. A failure throws,
  /// or is put in `*error` when given.
  std::size_t remove_unlinked_checkpoints(std::error_code* error = nullptr) const;
  std::string dir_;
};

/// Reads state.safetensors of a checkpoint folder.
TrainingState load_training_state(const std::string& checkpoint_dir);

/// A checkpoint folder (with model.safetensors), or a run folder's best/, else its last/.
/// Throws xgrad::Error saying which it is not.
std::string resolve_checkpoint(const std::string& path);

}  // namespace xgrad::training
