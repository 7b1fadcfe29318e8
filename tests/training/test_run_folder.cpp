// training::RunFolder with a model other than the seq2seq program's: checkpoints with the model,
// its state and extra files; last and best links; pruning; the state read back exactly.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <xgrad/training/run_folder.hpp>
#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
namespace fs = std::filesystem;

TEST_CASE("RunFolder saves checkpoints of any model, moves last and best, keeps only what they point at") {
  const TempDir scratch("run_folder");
  const training::RunFolder run(scratch.file("run"));
  CHECK_FALSE(run.has_checkpoint());
  models::GPTConfig config;
  config.vocab = 11;
  models::GPT model(config);
  optim::Adam adam(model.parameters());

  training::TrainingState state;
  state.step = 10;
  state.epoch = 1;
  state.position = 7;
  state.best_value = 0.25;
  state.best_step = 10;
  state.elapsed_seconds = 1.5;
  state.rng = default_generator().state();
  state.optimizer = adam.state_dict();
  run.save(model, state, /*is_best=*/true, [](const std::string& dir) { std::ofstream(dir + "/notes.txt") << "hi"; });
  CHECK(run.has_checkpoint());
  CHECK(fs::exists(fs::path(run.last()) / "notes.txt"));

  state.step = 20;
  run.save(model, state, /*is_best=*/false);
  state.step = 30;
  run.save(model, state, /*is_best=*/false);
  // best -> step 10, last -> step 30; step 20 is gone.
  const fs::path checkpoints = fs::path(run.dir()) / "checkpoints";
  CHECK(fs::exists(checkpoints / "step-0000010"));
  CHECK_FALSE(fs::exists(checkpoints / "step-0000020"));
  CHECK(fs::exists(checkpoints / "step-0000030"));
  CHECK(fs::read_symlink(fs::path(run.dir()) / "best").filename() == "step-0000010");
  CHECK(training::resolve_checkpoint(run.dir()) == (fs::path(run.dir()) / "best").string());

  const training::TrainingState back = training::load_training_state(run.last());
  CHECK(back.step == 30);
  CHECK(back.epoch == 1);
  CHECK(back.position == 7);
  CHECK(back.best_value == 0.25);
  CHECK(back.best_step == 10);
  CHECK(back.elapsed_seconds == 1.5);
  CHECK(back.rng == state.rng);
  CHECK(back.optimizer.size() == state.optimizer.size());
  const auto loaded = models::load<models::GPT>(run.last() + "/model.safetensors");
  CHECK(loaded->config().to_json() == config.to_json());
  CHECK_THROWS_WITH_AS(training::resolve_checkpoint(scratch.file("nowhere")), doctest::Contains("does not exist"),
                       Error);
}
