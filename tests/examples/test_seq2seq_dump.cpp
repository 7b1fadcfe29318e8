// `seq2seq dump` on the reference model's fixtures: the logits, loss and gradients it writes are
// PyTorch's (within 1e-4), and bad input gives a message and a non-zero exit code.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;

namespace {
int run(const std::string& arguments) {
  const std::string command = std::string(XGRAD_BIN_DIR) + "/seq2seq " + arguments + " > /dev/null 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// max |a - b| / max(1, |b|).
double worst_error(const Array& a, const Array& b) {
  REQUIRE(shape_of(a) == shape_of(b));
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(double(a.data()[i]) - b.data()[i]) / std::max(1.0, std::abs(double(b.data()[i]))));
  }
  return worst;
}
}  // namespace

TEST_CASE("seq2seq dump reproduces the reference model's logits, loss and gradients") {
  const std::string dir = XGRAD_FIXTURES_DIR;
  const TempDir scratch("seq2seq_dump");
  const std::string out = scratch.file("dump.safetensors");
  for (const std::string name : {"transformer_postln_relu", "transformer_preln_gelu"}) {
    CAPTURE(name);
    REQUIRE(run("dump --model " + dir + "/" + name + ".safetensors --batch " + dir + "/" + name +
                "_batch.safetensors --out " + out) == 0);
    safetensors::File got = safetensors::read(out), expected = safetensors::read(dir + "/" + name + "_batch.safetensors");
    CHECK(worst_error(got.get_tensor("logits"), expected.get_tensor("logits")) < 1e-4);
    CHECK(worst_error(got.get_tensor("loss"), expected.get_tensor("loss")) < 1e-4);
    std::size_t grads = 0;
    for (const std::string& key : expected.keys()) {
      if (key.rfind("grad.", 0) != 0) continue;
      CAPTURE(key);
      CHECK(worst_error(got.get_tensor(key), expected.get_tensor(key)) < 1e-4);
      ++grads;
    }
    CHECK(grads > 20);
  }
}

TEST_CASE("seq2seq: bad input exits non-zero") {
  CHECK(run("") != 0);                                    // no command: usage
  CHECK(run("dump --model") != 0);                        // missing values
  CHECK(run("frobnicate") != 0);                          // unknown command
  CHECK(run("dump --model /nonexistent.safetensors --batch x --out y") == 1);
  const std::string dir = XGRAD_FIXTURES_DIR;
  // A model file given as the batch: no src tensor.
  CHECK(run("dump --model " + dir + "/transformer_postln_relu.safetensors --batch " + dir +
            "/transformer_postln_relu.safetensors --out /tmp/xgrad_unused.safetensors") == 1);
}
