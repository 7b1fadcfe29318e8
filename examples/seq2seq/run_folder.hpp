// Saving and restoring training runs: checkpoints that continue bit-identically.
#pragma once

#include <cstdint>
#include <string>

#include <xgrad/optim/state_dict.hpp>

#include "seq2seq.hpp"

namespace seq2seq {

/// Everything beyond the weights that a resumed run needs to continue exactly.
struct TrainingState {
  std::int64_t step = 0;          // optimizer steps taken
  std::size_t epoch = 0, position = 0;  // the batch sampler's place
  double best_value = 0;          // best validation metric so far
  std::int64_t best_step = -1;    // its step (-1: none yet)
  double elapsed_seconds = 0;     // training time before this process
  std::string rng;                // the default generator's state (dropout masks)
  xgrad::optim::StateDict optimizer, scheduler;
};

/// Writes RUN/checkpoints/step-N/ (model, state, tokenizer), points RUN/last at it, and RUN/best
/// too when `is_best`; removes checkpoints neither link points at. Every file and link is
/// replaced atomically, so an interrupted save leaves the previous checkpoint usable.
void save_checkpoint(const std::string& run_dir, const xgrad::models::Transformer& model,
                     const xgrad::data::Tokenizer& tokenizer, const TrainingState& state, bool is_best);

/// Reads state.safetensors of a checkpoint folder.
TrainingState load_training_state(const std::string& checkpoint_dir);

}  // namespace seq2seq
