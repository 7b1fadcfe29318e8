// nn::Module: registration, dotted names, traversal, modes, state dicts, hooks, containers.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
using namespace xgrad::nn;

namespace {
struct Affine : Module {
  Tensor weight, bias;
  Tensor running;  // a buffer
  Affine(std::size_t n) : Module("Affine") {
    weight = register_parameter("weight", ones({n}));
    bias = register_parameter("bias", zeros({n}));
    running = register_buffer("running", zeros({n}));
    register_buffer("scratch", zeros({1}), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) const { return run_hooks(x * weight + bias); }
};

struct Block : Module {
  std::shared_ptr<Affine> first, second;
  Block() : Module("Block") {
    first = register_module("first", std::make_shared<Affine>(2));
    second = register_module("second", std::make_shared<Affine>(2));
  }
};

struct Net : Module {
  std::shared_ptr<ModuleList<Block>> layers;
  Tensor scale;
  Net() : Module("Net") {
    scale = register_parameter("scale", ones({1}));
    layers = register_module("layers", std::make_shared<ModuleList<Block>>());
    layers->push_back(std::make_shared<Block>()).push_back(std::make_shared<Block>());
  }
};
}  // namespace

TEST_CASE("named_parameters gives PyTorch's dotted names in registration order") {
  Net net;
  std::vector<std::string> names;
  for (auto& [name, p] : net.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"scale", "layers.0.first.weight", "layers.0.first.bias",
                                          "layers.0.second.weight", "layers.0.second.bias",
                                          "layers.1.first.weight", "layers.1.first.bias",
                                          "layers.1.second.weight", "layers.1.second.bias"});
  CHECK(net.parameters(/*recurse=*/false).size() == 1);
  CHECK(net.parameter_count() == 1 + 8 * 2);
  CHECK(net.children().size() == 1);
  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
  std::vector<std::string> modules;
  for (auto& [name, m] : net.named_modules()) modules.push_back(name + ":" + m->type_name());
  CHECK(modules == std::vector<std::string>{":Net", "layers:ModuleList", "layers.0:Block", "layers.0.first:Affine",
                                            "layers.0.second:Affine", "layers.1:Block", "layers.1.first:Affine",
                                            "layers.1.second:Affine"});
}

TEST_CASE("state_dict has parameters and persistent buffers; load_state_dict copies into the same storage") {
  Net a, b;
  StateDict state = a.state_dict();
  CHECK(state.size() == 9 + 4);  // 9 parameters, 4 persistent buffers
  CHECK(state.count("layers.1.second.running"));
  CHECK_FALSE(state.count("layers.1.second.scratch"));
  a.layers->at(1)->second->weight.mutable_value()(0) = 7.f;
  Tensor member = b.layers->at(1)->second->weight;
  b.load_state_dict(a.state_dict());
  CHECK(member.value()(0) == 7.f);  // the member sees the loaded value
}

TEST_CASE("strict loading lists every missing key, unexpected key and shape mismatch in one error") {
  Net net;
  StateDict state = net.state_dict();
  state.erase("scale");
  state.erase("layers.0.first.bias");
  state["layers.9.weight"] = zeros({2});
  state["layers.1.second.weight"] = zeros({3});
  try {
    net.load_state_dict(state);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(message.find("missing keys: layers.0.first.bias, scale") != std::string::npos);
    CHECK(message.find("unexpected keys: layers.9.weight") != std::string::npos);
    CHECK(message.find("layers.1.second.weight: expected shape [2], got [3]") != std::string::npos);
  }
  // Not strict: missing and unexpected keys are ignored, shape mismatches still throw.
  state["layers.1.second.weight"] = full({2}, 5.f);
  net.load_state_dict(state, /*strict=*/false);
  CHECK(net.layers->at(1)->second->weight.value()(1) == 5.f);
}

TEST_CASE("train and eval reach every descendant") {
  Net net;
  CHECK(net.layers->at(0)->first->is_training());
  net.eval();
  CHECK_FALSE(net.layers->at(0)->first->is_training());
  net.train();
  CHECK(net.layers->at(1)->second->is_training());
}

TEST_CASE("a tensor registered twice (tied weights) is one parameter, two state_dict keys") {
  struct Tied : Module {
    Tensor a, b;
    Tied() : Module("Tied") {
      a = register_parameter("a", ones({3}));
      b = register_parameter("b", a);
    }
  } tied;
  CHECK(tied.parameters().size() == 1);
  CHECK(tied.state_dict().size() == 2);
}

TEST_CASE("registration errors") {
  Affine m(2);
  CHECK_THROWS_WITH_AS(m.register_parameter("weight", ones({1})), doctest::Contains("already registered"), Error);
  CHECK_THROWS_WITH_AS(m.register_parameter("a.b", ones({1})), doctest::Contains("contain no '.'"), Error);
  ModuleList<Affine> list;
  CHECK_THROWS_WITH_AS(list.at(0), doctest::Contains("index 0 is out of range for a list of 0"), Error);
}

TEST_CASE("forward hooks see outputs and can be removed; zero_grad clears every parameter") {
  auto affine = std::make_shared<Affine>(2);
  int calls = 0;
  float seen = 0;
  int id = affine->register_forward_hook([&](const Module& m, const Tensor& out) {
    ++calls;
    seen = out.value()(0);
  });
  Tensor y = affine->forward(full({2}, 3.f));
  CHECK(calls == 1);
  CHECK(seen == 3.f);
  affine->remove_forward_hook(id);
  affine->forward(ones({2}));
  CHECK(calls == 1);
  y.backward(ones({2}));
  CHECK(affine->weight.grad().defined());
  affine->zero_grad();
  CHECK_FALSE(affine->weight.grad().defined());
}

TEST_CASE("Sequential applies its modules in order and names them 0, 1, ...") {
  Sequential seq;
  auto first = std::make_shared<Affine>(2), second = std::make_shared<Affine>(2);
  first->weight.mutable_value().fill(2.f);
  second->bias.mutable_value().fill(1.f);
  seq.push_back(first).push_back(second);
  CHECK(seq.forward(full({2}, 3.f)).value() == Array{7.f, 7.f});
  CHECK(seq.named_parameters()[2].first == "1.weight");
}

TEST_CASE("printing shows the tree with parameter counts") {
  Net net;
  const std::string text = net.to_string();
  CHECK(text.find("(layers): ModuleList") != std::string::npos);
  CHECK(text.find("(first): Affine  [weight[2], bias[2], 4 parameters]") != std::string::npos);
  CHECK(text.find("total: 17 trainable parameters") != std::string::npos);
}
