// `seq2seq train`, `eval` and `translate` end to end on small runs: the run folder's contents,
// exact resume (bit-identical losses), Ctrl-C, and the messages for bad input.
#include <doctest/doctest.h>

#include "temp_dir.hpp"

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr
};

/// Runs the program with `arguments` (and `input` on stdin), capturing what it prints.
Result run(const std::string& arguments, const std::string& input = "") {
  const TempDir scratch("seq2seq_stdin");
  const std::string in = scratch.write("stdin.txt", input);
  const std::string command = std::string(XGRAD_BIN_DIR) + "/seq2seq " + arguments + " < " + in + " 2>&1";
  Result result;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer;
  std::size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

/// step -> loss of the "train" lines of a run's metrics.jsonl.
std::map<long, double> train_losses(const fs::path& run) {
  std::map<long, double> losses;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("kind") == "train") losses[j.at("step").get<long>()] = j.at("loss").get<double>();
  }
  return losses;
}

// A small, quick run: the copy task, tiny model, one thread.
const std::string kSmallRun =
    "train --task copy --train-size 400 --valid-size 20 --test-size 20 --batch-tokens 400 --d-model 32 --heads 2 "
    "--layers 1 --ff 64 --valid-every 4 --valid-decode 10 --warmup 10 --threads 1 --seed 3";

}  // namespace

TEST_CASE("seq2seq train writes a run folder that eval and translate use") {
  const TempDir scratch("seq2seq_run");
  const fs::path& dir = scratch.path();
  const fs::path run_dir = dir / "run";
  const Result trained = run(kSmallRun + " --steps 6 --run-dir " + run_dir.string());
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK(trained.output.find("valid step 4") != std::string::npos);
  CHECK(trained.output.find("test (20 pairs") != std::string::npos);
  for (const char* file : {"args.json", "metrics.jsonl", "curves.svg", "last/model.safetensors",
                           "last/state.safetensors", "last/tokenizer.json", "best/model.safetensors"}) {
    CAPTURE(file);
    CHECK(fs::exists(run_dir / file));
  }
  // Steps 1-6 logged once each; validation at 4 and at the end (6).
  CHECK(train_losses(run_dir).size() == 6);
  // Checkpoints other than last and best are removed.
  std::size_t checkpoints = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(run_dir / "checkpoints")) ++checkpoints;
  CHECK(checkpoints <= 2);

  const Result scored = run("eval --model " + run_dir.string() + " --split valid");
  INFO(scored.output);
  CHECK(scored.status == 0);
  CHECK(scored.output.find("exact match") != std::string::npos);
  CHECK(scored.output.find("BLEU") != std::string::npos);

  // One line out per line in; an empty line gives an empty line and a warning, not a failure.
  const Result translated = run("translate --model " + run_dir.string(), "abc\n\nxyz\n");
  INFO(translated.output);
  CHECK(translated.status == 0);
  CHECK(translated.output.find("line 2: empty") != std::string::npos);
  // Lines that are not text, or too long for the model: a message each (the bytes escaped), an
  // empty line out, the exit code 1; the lines around them are translated.
  std::string hostile = "abc\n\xff\xfe bad\n";
  hostile += std::string("nul\0byte\n", 9);
  hostile += std::string(1 << 20, 'a') + "\nxyz\n";
  const Result guarded = run("translate --model " + run_dir.string(), hostile);
  INFO(guarded.output);
  CHECK(guarded.status == 1);
  CHECK(guarded.output.find("line 2: invalid UTF-8: \\xff\\xfe bad (an empty line is written for it)") !=
        std::string::npos);
  CHECK(guarded.output.find("line 3: a NUL byte: nul\\x00byte") != std::string::npos);
  CHECK(guarded.output.find("line 4: 1048576 tokens, more than the model's max_len") != std::string::npos);
  CHECK(guarded.output.find("\xff") == std::string::npos);  // no raw byte echoed
  const Result beam = run("translate --beam 3 --model " + (run_dir / "last").string(), "abc\n");
  CHECK(beam.status == 0);
  const Result refeed = run("translate --kv-cache off --model " + run_dir.string(), "abc\n");
  CHECK(refeed.status == 0);

  // A second run into the same folder is refused (it would mix two runs).
  const Result again = run(kSmallRun + " --steps 2 --run-dir " + run_dir.string());
  CHECK(again.status == 1);
  CHECK(again.output.find("already holds a run") != std::string::npos);
}

TEST_CASE("seq2seq train: gradient accumulation and clipping") {
  const TempDir scratch("seq2seq_accumulate");
  const fs::path& dir = scratch.path();
  auto first_step = [&](const std::string& flags, const std::string& name) {
    const Result trained = run(kSmallRun + " --steps 1 " + flags + " --run-dir " + (dir / name).string());
    INFO(trained.output);
    REQUIRE(trained.status == 0);
    std::ifstream in(dir / name / "metrics.jsonl");
    std::string line;
    REQUIRE(std::getline(in, line));
    return nlohmann::json::parse(line);
  };
  const auto one = first_step("", "one");
  const auto two = first_step("--accumulate 3 --clip-norm 0.5", "two");
  // Three batches make one step: more tokens than the first batch alone.
  CHECK(two.at("tokens").get<long>() > one.at("tokens").get<long>());
  // The gradients' norm is logged every step (it is checked for NaN every step), before clipping.
  CHECK(one.at("grad_norm").get<double>() > 0);
  CHECK(two.at("grad_norm").get<double>() > 0.5);
}

TEST_CASE("seq2seq train --resume continues bit-identically") {
  const TempDir scratch("seq2seq_resume");
  const fs::path& dir = scratch.path();
  const Result whole = run(kSmallRun + " --steps 10 --run-dir " + (dir / "whole").string());
  INFO(whole.output);
  REQUIRE(whole.status == 0);
  // Stop at step 5 (between validations), then go on to 10.
  const Result first = run(kSmallRun + " --steps 5 --run-dir " + (dir / "split").string());
  REQUIRE(first.status == 0);
  const Result second = run("train --resume " + (dir / "split").string() + " --steps 10");
  INFO(second.output);
  REQUIRE(second.status == 0);
  CHECK(second.output.find("resuming") != std::string::npos);

  const auto expected = train_losses(dir / "whole");
  const auto resumed = train_losses(dir / "split");
  REQUIRE(expected.size() == 10);
  REQUIRE(resumed.size() == 10);
  for (const auto& [at, loss] : expected) {
    const long step = at;  // a copy: Clang's lambdas (CAPTURE) cannot name a structured binding
    CAPTURE(step);
    CHECK(resumed.at(step) == loss);  // bit for bit
  }
  // Settings other than the length of the run and the threads cannot change on resume.
  const Result changed = run("train --resume " + (dir / "split").string() + " --d-model 64");
  CHECK(changed.status != 0);
  CHECK(changed.output.find("cannot change a resumed run") != std::string::npos);
  // The threads belong to the machine: a resumed run may change them, and is told what that means.
  const Result same_threads = run("train --resume " + (dir / "split").string() + " --steps 11 --threads 1");
  CHECK(same_threads.status == 0);
  CHECK(same_threads.output.find("may now differ") == std::string::npos);
  const Result more_threads = run("train --resume " + (dir / "split").string() + " --steps 12 --threads 2");
  INFO(more_threads.output);
  CHECK(more_threads.status == 0);
  CHECK(more_threads.output.find("resuming with 2 threads where the run had 1") != std::string::npos);
  CHECK(train_losses(dir / "split").size() == 12);
}

TEST_CASE("seq2seq train --resume of a run stopped before its first checkpoint starts it again") {
  const TempDir scratch("seq2seq_no_checkpoint");
  const fs::path run_dir = scratch.path() / "run";
  REQUIRE(run(kSmallRun + " --steps 3 --run-dir " + run_dir.string()).status == 0);
  const auto whole = train_losses(run_dir);
  // What a run killed before its first save leaves: its settings and an empty metrics file.
  for (const char* name : {"last", "best", "checkpoints", "curves.svg"}) fs::remove_all(run_dir / name);
  std::ofstream(run_dir / "metrics.jsonl", std::ios::trunc).flush();
  const Result again = run("train --resume " + run_dir.string());
  INFO(again.output);
  CHECK(again.status == 0);
  CHECK(again.output.find("has no checkpoint yet") != std::string::npos);
  CHECK(fs::exists(run_dir / "last" / "model.safetensors"));
  CHECK(train_losses(run_dir) == whole);  // from step 0, with the saved settings and seed
}

TEST_CASE("seq2seq: every command takes --threads; --help shows the defaults") {
  const TempDir scratch("seq2seq_threads");
  const fs::path run_dir = scratch.path() / "run";
  REQUIRE(run(kSmallRun + " --steps 2 --run-dir " + run_dir.string()).status == 0);
  const Result translated = run("translate --threads 1 --model " + run_dir.string(), "abc\n");
  INFO(translated.output);
  CHECK(translated.status == 0);
  const Result scored = run("eval --threads 1 --limit 5 --model " + run_dir.string());
  INFO(scored.output);
  CHECK(scored.status == 0);
  const Result help = run("train --help");
  CHECK(help.output.find("--batch-tokens UINT:POSITIVE=4096") != std::string::npos);
  CHECK(help.output.find("--run-dir TEXT=runs/dates") != std::string::npos);
}

TEST_CASE("seq2seq train saves a checkpoint on Ctrl-C and resumes from it") {
  const TempDir scratch("seq2seq_interrupt");
  const fs::path& dir = scratch.path();
  const std::string command = std::string(XGRAD_BIN_DIR) + "/seq2seq";
  const std::string run_dir = (dir / "run").string();
  std::fflush(stdout);  // or the child would write doctest's buffered output a second time
  std::fflush(stderr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::freopen("/dev/null", "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    execl(command.c_str(), command.c_str(), "train", "--task", "copy", "--train-size", "400", "--valid-size", "20",
          "--test-size", "0", "--d-model", "32", "--heads", "2", "--layers", "1", "--ff", "64", "--valid-every",
          "100000", "--threads", "1", "--steps", "100000", "--run-dir", run_dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until it is training (metrics.jsonl has lines), then interrupt.
  for (int i = 0; i < 600 && (!fs::exists(dir / "run" / "metrics.jsonl") ||
                              fs::file_size(dir / "run" / "metrics.jsonl") < 200);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(child, SIGINT);
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK(fs::exists(dir / "run" / "last" / "state.safetensors"));
  const long saved = static_cast<long>(train_losses(dir / "run").size());
  CHECK(saved > 0);
  const Result resumed = run("train --resume " + run_dir + " --steps " + std::to_string(saved + 2));
  INFO(resumed.output);
  CHECK(resumed.status == 0);
  CHECK(train_losses(dir / "run").size() == static_cast<std::size_t>(saved + 2));
}

TEST_CASE("seq2seq: bad input gives a clear message and a non-zero exit code") {
  const TempDir scratch("seq2seq_bad");
  const fs::path& dir = scratch.path();
  // Unknown flags print the usage.
  const Result unknown = run("train --frobnicate 3");
  CHECK(unknown.status != 0);
  CHECK(unknown.output.find("--frobnicate") != std::string::npos);
  CHECK(unknown.output.find("Usage") != std::string::npos);

  const Result missing = run("translate --model " + (dir / "nowhere").string(), "abc\n");
  CHECK(missing.status == 1);
  CHECK(missing.output.find("does not exist") != std::string::npos);

  // A run to break in different ways.
  const fs::path good = dir / "good";
  REQUIRE(run(kSmallRun + " --steps 2 --run-dir " + good.string()).status == 0);
  const fs::path checkpoint = fs::canonical(good / "last");

  // A truncated model file.
  const fs::path corrupt = dir / "corrupt";
  fs::copy(checkpoint, corrupt);
  fs::resize_file(corrupt / "model.safetensors", fs::file_size(corrupt / "model.safetensors") / 2);
  const Result truncated = run("translate --model " + corrupt.string(), "abc\n");
  CHECK(truncated.status == 1);
  CHECK(truncated.output.find("model.safetensors") != std::string::npos);

  // A vocabulary that is not the model's: the tokenizer of a run on another task.
  const fs::path other = dir / "other";
  REQUIRE(run("train --task add --train-size 300 --valid-size 10 --test-size 0 --d-model 32 --heads 2 --layers 1 "
              "--ff 64 --steps 1 --threads 1 --run-dir " + other.string())
              .status == 0);
  const fs::path mismatched = dir / "mismatched";
  fs::copy(checkpoint, mismatched);
  fs::copy_file(fs::canonical(other / "last") / "tokenizer.json", mismatched / "tokenizer.json",
                fs::copy_options::overwrite_existing);
  const Result vocabulary = run("translate --model " + mismatched.string(), "abc\n");
  CHECK(vocabulary.status == 1);
  CHECK(vocabulary.output.find("do not belong together") != std::string::npos);

  // A user corpus without a validation file, and one with no usable line.
  const fs::path tsv = scratch.write("pairs.tsv", "no tab here\n");
  const Result no_valid = run("train --train " + tsv.string() + " --run-dir " + (dir / "r1").string());
  CHECK(no_valid.status == 1);
  CHECK(no_valid.output.find("--valid") != std::string::npos);
  const Result unusable =
      run("train --train " + tsv.string() + " --valid " + tsv.string() + " --run-dir " + (dir / "r2").string());
  CHECK(unusable.status == 1);
  CHECK(unusable.output.find("pairs.tsv") != std::string::npos);

  // Corpora that are not files of text: a FIFO nobody writes to (refused, not waited on), a
  // folder, a binary file; and a hand-edited args.json out of range, on --resume.
  const std::string fifo = scratch.file("pipe.tsv");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string binary = scratch.write("model.bin", std::string("\x7f" "ELF\0\0\0\tx\ty\n", 12));
  const std::string good_tsv = scratch.write("good.tsv", "a b\tb a\n");
  for (const auto& [path, expected] :
       {std::pair<std::string, std::string>{fifo, "is a FIFO (named pipe), expected a regular file"},
        {dir.string(), "is a folder, expected a regular file"},
        {binary, "looks like a binary file (a NUL byte at offset 4)"}}) {
    const std::string corpus = path;
    CAPTURE(corpus);
    const Result refused = run("train --train " + corpus + " --valid " + good_tsv + " --run-dir " +
                               (dir / "r3").string());
    CHECK(refused.status == 1);
    CHECK(refused.output.find(expected) != std::string::npos);
  }
  nlohmann::json args = nlohmann::json::parse(std::ifstream(good / "args.json"));
  args["warmup"] = -5;
  std::ofstream(good / "args.json") << args.dump();
  const Result edited = run("train --resume " + good.string());
  CHECK(edited.status == 1);
  CHECK(edited.output.find("training settings: warmup must be a positive number, not -5") != std::string::npos);
}

TEST_CASE("seq2seq on a TSV corpus with SentencePiece subwords: export, train, eval, translate") {
  const TempDir scratch("seq2seq_spm");
  const fs::path& dir = scratch.path();
  const Result exported = run("export --task numbers --train-size 1500 --valid-size 30 --test-size 30 --out " +
                              (dir / "corpus").string());
  INFO(exported.output);
  REQUIRE(exported.status == 0);
  std::ifstream first_line(dir / "corpus" / "train.tsv");
  std::string line;
  REQUIRE(std::getline(first_line, line));
  CHECK(line.find('\t') != std::string::npos);

  const fs::path run_dir = dir / "run";
  const Result trained =
      run("train --train " + (dir / "corpus" / "train.tsv").string() + " --valid " +
          (dir / "corpus" / "valid.tsv").string() + " --test " + (dir / "corpus" / "test.tsv").string() +
          " --spm-vocab 80 --d-model 32 --heads 2 --layers 1 --ff 64 --steps 4 --valid-every 2 --threads 1 "
          "--run-dir " + run_dir.string());
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK(trained.output.find("vocabulary 80 (sentencepiece)") != std::string::npos);
  CHECK(trained.output.find("test (30 pairs") != std::string::npos);
  CHECK(fs::exists(run_dir / "last" / "spm.model"));

  const Result scored = run("eval --model " + run_dir.string() + " --test " + (dir / "corpus" / "test.tsv").string());
  INFO(scored.output);
  CHECK(scored.status == 0);
  CHECK(scored.output.find("30 pairs") != std::string::npos);
  const Result translated = run("translate --model " + run_dir.string(), "forty-two\nseven hundred\n");
  INFO(translated.output);
  CHECK(translated.status == 0);
}
