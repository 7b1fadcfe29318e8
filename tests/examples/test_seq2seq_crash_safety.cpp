// `seq2seq train` under the worst a machine does to it: SIGKILL at random moments, a full disk
// during a save, a second process on the same run folder, and a loss that turns NaN.
#include <doctest/doctest.h>

#include "temp_dir.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <xgrad/data/tokenizer.hpp>
#include <xgrad/nn/safetensors.hpp>
#include <xgrad/training/run_folder.hpp>

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

/// A seq2seq process started in the background, its output going to a file.
class Process {
 public:
  /// `file_size_limit` > 0: RLIMIT_FSIZE in bytes, as a full disk would stop the writes.
  Process(const std::string& arguments, const std::string& log, long file_size_limit = 0) : log_(log) {
    std::vector<std::string> words{std::string(XGRAD_BIN_DIR) + "/seq2seq"};
    std::istringstream split(arguments);
    for (std::string word; split >> word;) words.push_back(word);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      if (file_size_limit > 0) {
        const rlimit limit{static_cast<rlim_t>(file_size_limit), static_cast<rlim_t>(file_size_limit)};
        ::setrlimit(RLIMIT_FSIZE, &limit);
      }
      std::vector<char*> argv;
      for (std::string& word : words) argv.push_back(word.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0 && !done_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  /// Whether it has ended (without waiting).
  bool ended() {
    if (done_) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) record(status);
    return done_;
  }
  /// Waits for the end; returns the exit code (-signal when killed).
  int wait() {
    int status = 0;
    if (!done_ && ::waitpid(pid_, &status, 0) == pid_) record(status);
    return code_;
  }
  void kill_now() {
    ::kill(pid_, SIGKILL);
    wait();
  }
  std::string output() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  void record(int status) {
    done_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  std::string log_;
  pid_t pid_ = -1;
  bool done_ = false;
  int code_ = -1;
};

int run_to_end(const std::string& arguments, const std::string& log, std::string* output = nullptr,
               long file_size_limit = 0) {
  Process process(arguments, log, file_size_limit);
  const int code = process.wait();
  if (output) *output = process.output();
  return code;
}

struct Metrics {
  std::map<long, double> train_loss;  // step -> loss
  std::size_t lines = 0, torn = 0, duplicates = 0;
};

Metrics read_metrics(const fs::path& run) {
  Metrics m;
  std::set<std::pair<std::string, long>> seen;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    ++m.lines;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("kind") || !j.contains("step")) {
      ++m.torn;
      continue;
    }
    const auto key = std::make_pair(j.at("kind").get<std::string>(), j.at("step").get<long>());
    if (!seen.insert(key).second) ++m.duplicates;
    if (key.first == "train") m.train_loss[key.second] = j.at("loss").get<double>();
  }
  return m;
}

/// Checks that `link` (RUN/last or RUN/best) names a complete checkpoint: weights, state and
/// tokenizer all load, and the state's step is the folder's. Returns the step.
long check_checkpoint(const fs::path& link) {
  CAPTURE(link);
  REQUIRE(fs::is_symlink(link));
  const std::string dir = fs::canonical(link).string();
  const xgrad::safetensors::File weights = xgrad::safetensors::read(dir + "/model.safetensors");
  CHECK_FALSE(weights.tensors().empty());
  const xgrad::training::TrainingState state = xgrad::training::load_training_state(dir);
  CHECK(xgrad::data::load_tokenizer(dir) != nullptr);
  char name[32];
  std::snprintf(name, sizeof(name), "step-%07lld", static_cast<long long>(state.step));
  CHECK(fs::path(dir).filename().string() == name);
  return static_cast<long>(state.step);
}

/// Files and links a killed write leaves behind (".model.safetensors.tmp-...", ".last.tmp"); none
/// when the run folder is not there yet (a kill during start-up).
std::vector<std::string> leftovers(const fs::path& run) {
  std::vector<std::string> found;
  if (!fs::exists(run)) return found;
  for (const auto& entry : fs::recursive_directory_iterator(run)) {
    const std::string name = entry.path().filename().string();
    if (name[0] == '.' && name.find(".tmp") != std::string::npos) found.push_back(entry.path().string());
  }
  return found;
}

// A small, quick run: the copy task, tiny model, one thread, a checkpoint every 3 steps.
const std::string kRun =
    "train --task copy --train-size 300 --valid-size 12 --test-size 12 --batch-tokens 300 --d-model 32 --heads 2 "
    "--layers 1 --ff 64 --valid-every 3 --valid-decode 12 --warmup 10 --threads 1 --seed 5";

}  // namespace

TEST_CASE("seq2seq train killed at 20 random moments resumes each time, and ends bit-identical") {
  const TempDir scratch("crash_kill");
  const fs::path reference = scratch.path() / "reference", run = scratch.path() / "run";
  const std::string steps = " --steps 60";

  const Clock::time_point begun = Clock::now();
  REQUIRE(run_to_end(kRun + steps + " --run-dir " + reference.string(), scratch.file("reference.log")) == 0);
  const double whole = std::chrono::duration<double>(Clock::now() - begun).count();
  const Metrics expected = read_metrics(reference);
  REQUIRE(expected.train_loss.size() == 60);

  // Kill moments spread over a whole run's length: early ones land in start-up, later ones in
  // steps, validations and saves. Each process starts where the last checkpoint left off.
  std::mt19937 random(20261130);
  std::uniform_real_distribution<double> moment(0.05 * whole, 0.8 * whole);
  int kills = 0, finished_early = 0, mid_write = 0, unlinked_folders = 0;
  bool fresh = true;
  while (kills < 20) {
    const std::string arguments = fresh ? kRun + steps + " --run-dir " + run.string() : "train --resume " + run.string();
    Process process(arguments, scratch.file("run" + std::to_string(kills) + ".log"));
    std::this_thread::sleep_for(std::chrono::duration<double>(moment(random)));
    if (process.ended()) {  // it got to the end first: start over, so every kill lands in a live run
      INFO(process.output());
      REQUIRE(process.wait() == 0);
      ++finished_early;
      REQUIRE(finished_early < 20);
      fs::remove_all(run);
      fresh = true;
      continue;
    }
    process.kill_now();
    ++kills;
    // What the kill left: the run folder loads from `last` and `best`, whatever it interrupted.
    if (!leftovers(run).empty()) ++mid_write;
    if (fs::exists(run / "checkpoints")) {
      for (const auto& entry : fs::directory_iterator(run / "checkpoints")) {
        const std::string name = entry.path().filename().string();
        if (fs::exists(run / "last") && name != fs::canonical(run / "last").filename().string() &&
            (!fs::exists(run / "best") || name != fs::canonical(run / "best").filename().string())) {
          ++unlinked_folders;
        }
      }
    }
    if (fs::is_symlink(run / "last")) {
      check_checkpoint(run / "last");
      fresh = false;
    } else {
      // Killed before the first save: the folder has no checkpoint; --resume starts it again.
      fresh = !fs::exists(run / "args.json");
    }
    if (fs::is_symlink(run / "best")) check_checkpoint(run / "best");
  }
  MESSAGE(kills << " kills (" << mid_write << " during a file or link write, " << unlinked_folders
                << " checkpoint folders left unlinked), " << finished_early << " runs that ended before their kill");

  // What a kill in the middle of a write leaves, whether or not one of the 20 landed there: the
  // next process that holds the lock removes it.
  if (!fresh) {
    std::ofstream(run / ".metrics.jsonl.tmp-1-00000000deadbeef") << "{\"kind\":\"tra";
    std::ofstream(run / "last" / ".state.safetensors.tmp-1-00000000deadbeef") << "partial";
    fs::remove(run / ".last.tmp");  // a kill may have left one already
    fs::create_directory_symlink("checkpoints/nowhere", run / ".last.tmp");
    fs::create_directories(run / "checkpoints" / "step-9999999");
    std::ofstream(run / ".x") << "a user's own short dotfile, kept";
  }
  std::string output;
  const std::string last = fresh ? kRun + steps + " --run-dir " + run.string() : "train --resume " + run.string();
  REQUIRE(run_to_end(last, scratch.file("final.log"), &output) == 0);
  INFO(output);
  CHECK(check_checkpoint(run / "last") == 60);
  check_checkpoint(run / "best");
  CHECK(leftovers(run).empty());
  CHECK_FALSE(fs::exists(run / "checkpoints" / "step-9999999"));
  CHECK(fresh == !fs::exists(run / ".x"));
  const Metrics got = read_metrics(run);
  CHECK(got.torn == 0);
  CHECK(got.duplicates == 0);
  REQUIRE(got.train_loss.size() == expected.train_loss.size());
  for (const auto& [at, loss] : expected.train_loss) {
    const long step = at;
    CAPTURE(step);
    CHECK(got.train_loss.at(step) == loss);  // bit-identical
  }
}

TEST_CASE("a full disk during a save: a clear error naming the file, the previous checkpoint intact") {
  const TempDir scratch("crash_disk");
  const fs::path run = scratch.path() / "run";
  REQUIRE(run_to_end(kRun + " --steps 6 --run-dir " + run.string(), scratch.file("first.log")) == 0);
  REQUIRE(check_checkpoint(run / "last") == 6);
  const auto model_bytes = static_cast<long>(fs::file_size(run / "last" / "model.safetensors"));

  // Resumed with every file limited to half a checkpoint: the save at step 9 cannot be written.
  std::string output;
  const int code = run_to_end("train --resume " + run.string() + " --steps 12", scratch.file("full.log"), &output,
                              model_bytes / 2);
  INFO(output);
  CHECK(code == 1);
  CHECK(output.find("model.safetensors") != std::string::npos);
  CHECK(output.find("File too large") != std::string::npos);
  CHECK(check_checkpoint(run / "last") == 6);  // untouched
  CHECK_FALSE(fs::exists(run / "checkpoints" / "step-0000009"));
  CHECK(leftovers(run).empty());

  // With room again, the run goes on from step 6.
  REQUIRE(run_to_end("train --resume " + run.string() + " --steps 12", scratch.file("again.log"), &output) == 0);
  CHECK(check_checkpoint(run / "last") == 12);
  CHECK(read_metrics(run).duplicates == 0);
}

TEST_CASE("a second seq2seq train on the same run folder refuses; the lock dies with its holder") {
  const TempDir scratch("crash_lock");
  const fs::path run = scratch.path() / "run";
  Process holder(kRun + " --steps 1000000 --run-dir " + run.string(), scratch.file("holder.log"));
  // Wait until the holder has taken the lock (it writes its pid into it).
  for (int i = 0; i < 600 && (!fs::exists(run / ".lock") || fs::file_size(run / ".lock") == 0); ++i) {
    REQUIRE_FALSE(holder.ended());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string output;
  CHECK(run_to_end("train --resume " + run.string(), scratch.file("second.log"), &output) == 1);
  CHECK(output.find("is in use by another training process (pid") != std::string::npos);
  CHECK(run_to_end(kRun + " --steps 3 --run-dir " + run.string(), scratch.file("third.log"), &output) == 1);
  CHECK(output.find("is in use by another training process") != std::string::npos);
  CHECK_FALSE(holder.ended());

  holder.kill_now();  // the kernel releases its lock
  // A holder killed before its first checkpoint leaves a run that --resume starts again.
  CHECK(run_to_end("train --resume " + run.string() + " --steps 3", scratch.file("after.log"), &output) == 0);
}

TEST_CASE("a loss driven to NaN: steps skipped, then a stop naming the step; --check-nan names the op") {
  const TempDir scratch("crash_nan");
  std::string output;
  const std::string absurd = kRun + " --steps 40 --lr-factor 1e30 --max-bad-steps 3";
  CHECK(run_to_end(absurd + " --run-dir " + scratch.file("skip"), scratch.file("skip.log"), &output) == 1);
  INFO(output);
  CHECK(output.find("step skipped, weights and optimizer unchanged (1 in a row; 3 stop the run)") != std::string::npos);
  CHECK(output.find("3 steps in a row had a non-finite loss or gradient norm (--max-bad-steps 3): stopping") !=
        std::string::npos);
  // metrics.jsonl marks each skipped step and counts them.
  std::ifstream in(scratch.path() / "skip" / "metrics.jsonl");
  int skipped = 0;
  long last_count = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("skipped")) ++skipped;
    if (j.contains("skipped_steps")) last_count = j.at("skipped_steps").get<long>();
  }
  CHECK(skipped == 3);
  CHECK(last_count == 3);

  CHECK(run_to_end(absurd + " --check-nan --run-dir " + scratch.file("anomaly"), scratch.file("anomaly.log"),
                   &output) == 1);
  CHECK(output.find("anomaly: the forward of '") != std::string::npos);
  CHECK(output.find(" produced ") != std::string::npos);
}
