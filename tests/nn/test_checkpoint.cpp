// nn::save and nn::load: round trips under dotted names, strict errors naming the file, and
// files written by the PyTorch reference writer.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
using namespace xgrad::nn;

namespace {
struct Small : Module {
  std::shared_ptr<Linear> proj;
  std::shared_ptr<LayerNorm> norm;
  Small(std::size_t in, std::size_t out, std::uint64_t seed) : Module("Small") {
    Generator g(seed);
    proj = register_module("proj", std::make_shared<Linear>(in, out, true, g));
    norm = register_module("norm", std::make_shared<LayerNorm>(out));
    init::normal_(norm->weight, 1.0, 0.1, g);
  }
};
}  // namespace

TEST_CASE("save then load gives the same parameters and metadata") {
  const TempDir dir("checkpoint");
  const std::string path = dir.file("roundtrip.safetensors");
  Small a(4, 3, 1), b(4, 3, 2);
  save(a, path, {{"format", "pt"}, {"note", "test"}});
  CHECK(b.proj->weight.value() != a.proj->weight.value());
  auto metadata = load(b, path);
  CHECK(metadata.at("note") == "test");
  for (auto& [name, tensor] : a.state_dict()) CHECK(b.state_dict().at(name).value() == tensor.value());
  safetensors::File file = safetensors::read(path);
  CHECK(file.keys() == std::vector<std::string>{"norm.bias", "norm.weight", "proj.bias", "proj.weight"});
}

TEST_CASE("loading a file that does not fit the module names the file and every problem") {
  const TempDir dir("checkpoint");
  const std::string path = dir.file("mismatch.safetensors");
  Small a(4, 3, 1), other(5, 3, 1);
  save(a, path);
  try {
    load(other, path);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("proj.weight: expected shape [3,5], got [3,4]") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(load(a, dir.file("missing.safetensors")), doctest::Contains("missing.safetensors"), Error);
}

TEST_CASE("a checkpoint written by PyTorch loads by name and gives PyTorch's output") {
  // Written by tests/fixtures/make_checkpoint_fixture.py: nn.Linear(4, 3) then nn.LayerNorm(3).
  const std::string dir = XGRAD_FIXTURES_DIR;
  Small model(4, 3, 5);
  auto metadata = load(model, dir + "/small_module.safetensors");
  CHECK(metadata.at("format") == "pt");
  safetensors::File io = safetensors::read(dir + "/small_module_io.safetensors");
  Tensor y = model.norm->forward(model.proj->forward(Tensor(io.get_tensor("input"))));
  CHECK(xt::allclose(y.value(), io.get_tensor("output"), 1e-5, 1e-6));
}
