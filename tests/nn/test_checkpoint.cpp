// nn::save and nn::load: round trips under dotted names, strict errors naming the file, and
// files written by the PyTorch reference writer.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>

#include <fmt/format.h>

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

TEST_CASE("load reads F32 tensors straight into the parameters; a file refused leaves the module as it was") {
  const TempDir dir("checkpoint");
  Small a(4, 3, 1);
  const std::string path = dir.file("a.safetensors");
  save(a, path);
  const auto snapshot = [](const Module& m) {
    std::map<std::string, Array> values;
    for (const auto& [name, tensor] : m.state_dict()) values.emplace(name, tensor.value());
    return values;
  };

  // The placement: every F32 tensor of the module's shape, straight into its parameter's storage.
  Small b(4, 3, 2);
  const float* weight_storage = b.proj->weight.value().data();
  const safetensors::File file = safetensors::read(
      path, safetensors::Int8Tensors::widen,
      [&](const std::vector<safetensors::TensorInfo>& tensors, const std::map<std::string, std::string>&) {
        return place_state(b, tensors, true, path);
      });
  CHECK(file.placed() == std::vector<std::string>{"norm.bias", "norm.weight", "proj.bias", "proj.weight"});
  CHECK(file.tensors().empty());
  CHECK(b.proj->weight.value().data() == weight_storage);  // written in place, not replaced
  CHECK(snapshot(b) == snapshot(a));
  CHECK_THROWS_WITH_AS(file.get_tensor("proj.weight"), doctest::Contains("was read into the storage given for it"),
                       Error);

  // Refused from the header: a missing tensor (strict), a shape that differs, an integer tensor.
  safetensors::write(dir.file("missing.safetensors"), {{"proj.weight", a.proj->weight.value()}});
  safetensors::write(dir.file("extra.safetensors"),
                     {{"proj.weight", a.proj->weight.value()}, {"proj.bias", a.proj->bias.value()},
                      {"norm.weight", a.norm->weight.value()}, {"norm.bias", a.norm->bias.value()}},
                     {{"step", Indices({3})}});
  Small c(4, 3, 3);
  const auto before = snapshot(c);
  CHECK_THROWS_WITH_AS(load(c, dir.file("missing.safetensors")), doctest::Contains("missing keys: norm.bias"), Error);
  CHECK_THROWS_WITH_AS(load(c, dir.file("extra.safetensors")),
                       doctest::Contains("holds integer tensors where parameters are expected: step"), Error);
  Small wide(5, 3, 4);
  const std::string wide_path = dir.file("wide.safetensors");
  save(wide, wide_path);
  CHECK_THROWS_WITH_AS(load(c, wide_path), doctest::Contains("proj.weight: expected shape [3,4], got [3,5]"), Error);
  CHECK(snapshot(c) == before);  // nothing was read into it

  // Not strict: the tensors the module has are loaded, the others ignored.
  load(c, dir.file("missing.safetensors"), false);
  CHECK(c.proj->weight.value() == a.proj->weight.value());
  CHECK(c.norm->weight.value() == before.at("norm.weight"));
  load(c, dir.file("extra.safetensors"), false);
  CHECK(snapshot(c) == snapshot(a));
}

TEST_CASE("load converts the tensors it cannot place (F64) beside the F32 ones it reads in place") {
  const TempDir dir("checkpoint");
  Small a(4, 3, 1);
  // proj.weight as F64 bytes, the rest F32: written by hand.
  const Array& w = a.proj->weight.value();
  std::string f64(w.size() * 8, '\0');
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double v = w.data()[i];
    std::memcpy(f64.data() + 8 * i, &v, 8);
  }
  std::string f32;
  for (const Array* t : {&a.norm->bias.value(), &a.norm->weight.value(), &a.proj->bias.value()}) {
    f32.append(reinterpret_cast<const char*>(t->data()), 4 * t->size());
  }
  const std::size_t n = 4 * 3, begin = f32.size();
  const std::string header = fmt::format(
      R"({{"norm.bias":{{"dtype":"F32","shape":[3],"data_offsets":[0,12]}},)"
      R"("norm.weight":{{"dtype":"F32","shape":[3],"data_offsets":[12,24]}},)"
      R"("proj.bias":{{"dtype":"F32","shape":[3],"data_offsets":[24,36]}},)"
      R"("proj.weight":{{"dtype":"F64","shape":[3,4],"data_offsets":[{},{}]}}}})",
      begin, begin + 8 * n);
  std::string bytes(8, '\0');
  const std::uint64_t length = header.size();
  std::memcpy(bytes.data(), &length, 8);
  bytes += header + f32 + f64;
  const std::string path = dir.file("mixed.safetensors");
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  Small b(4, 3, 2);
  load(b, path);
  CHECK(b.proj->weight.value() == a.proj->weight.value());  // F64 of float values: exact
  CHECK(b.norm->weight.value() == a.norm->weight.value());
  CHECK(b.proj->bias.value() == a.proj->bias.value());
}
