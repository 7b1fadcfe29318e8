// Every nn module against PyTorch: tests/fixtures/nn_modules.json (written by
// tests/fixtures/make_nn_fixtures.py, which documents the format) holds torch modules' state_dicts,
// inputs, outputs and gradients. Each case builds the xgrad module, loads the state_dict by
// PyTorch's names, runs forward and backward, and must match the output, every input gradient and
// every parameter gradient (by name) within 1e-5 relative. A module kind without a builder here fails.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <xgrad/xgrad.hpp>

#include "torch_fixture.hpp"

using namespace xgrad;
using json = nlohmann::json;
using namespace torch_fixture;

namespace {

/// One fixture case as its builder sees it: the float inputs, the module's constructor arguments
/// ("config") and the other forward arguments ("args"), each read ticked off (FixtureCase).
class Case : public FixtureCase {
 public:
  using FixtureCase::FixtureCase;

  // --- constructor arguments ---
  std::size_t size(const char* key) { return config(key).get<std::size_t>(); }
  float real(const char* key) { return static_cast<float>(config(key).get<double>()); }
  bool flag(const char* key) { return config(key).get<bool>(); }
  std::string text(const char* key) { return config(key).get<std::string>(); }
  std::optional<std::int64_t> optional_integer(const char* key) {
    if (!has_entry("config", key)) return std::nullopt;
    return config(key).get<std::int64_t>();
  }

  // --- forward arguments ---
  bool has_arg(const char* key) const { return has_entry("args", key); }
  bool arg_flag(const char* key) { return arg(key).get<bool>(); }
  std::string arg_text(const char* key) { return arg(key).get<std::string>(); }
  Indices indices(const char* key) { return indices_entry("args", key); }
  Mask mask(const char* key) { return mask_entry("args", key); }

  /// The case's state_dict, to load into the module.
  nn::StateDict state_dict() const {
    nn::StateDict state;
    for (const auto& item : spec_.at("state_dict").items()) state[item.key()] = Tensor(array_of_json(item.value()));
    return state;
  }

 private:
  const json& config(const char* key) { return entry("config", key); }
  const json& arg(const char* key) { return entry("args", key); }
};

/// What a builder returns: the module it built (null for a plain function), its output and,
/// for attention with need_weights, the head-averaged weights.
struct Run {
  std::shared_ptr<nn::Module> module;
  Tensor output;
  Tensor weights;
};

using Builder = std::function<Run(Case&)>;

/// Builds the module from the case's config and loads its state_dict: strict, so every name must
/// be PyTorch's.
template <class M, class... Args>
std::shared_ptr<M> build(Case& c, Args&&... args) {
  auto module = std::make_shared<M>(std::forward<Args>(args)...);
  module->load_state_dict(c.state_dict());
  return module;
}

Run attention(Case& c) {
  nn::MultiheadAttentionOptions options(c.size("embed_dim"), c.size("num_heads"));
  options.dropout = c.real("dropout");
  options.bias = c.flag("bias");
  options.rotary = c.flag("rotary");
  auto mha = build<nn::MultiheadAttention>(c, options);
  const Tensor& query = c.in("query");
  const Tensor& key = c.has_input("key") ? c.in("key") : query;
  const Tensor& value = c.has_input("value") ? c.in("value") : key;
  std::optional<Mask> key_padding_mask;
  if (c.has_arg("key_padding_mask")) key_padding_mask = c.mask("key_padding_mask");
  nn::AttnMask attn_mask;
  if (c.has_arg("attn_mask")) {
    const Mask blocked = c.mask("attn_mask");
    const std::string kind = c.arg_text("attn_mask_kind");
    if (kind == "bool") {
      attn_mask = nn::AttnMask(blocked);
    } else if (kind == "float") {  // torch's additive form: -inf where blocked
      Array additive = Array::from_shape(blocked.shape());
      for (std::size_t i = 0; i < blocked.size(); ++i)
        additive.data()[i] = blocked.data()[i] ? -std::numeric_limits<float>::infinity() : 0.f;
      attn_mask = nn::AttnMask(std::move(additive));
    } else {
      throw Error("fixture case " + c.name() + ": unknown attn_mask_kind '" + kind + "'");
    }
  }
  const bool need_weights = c.arg_flag("need_weights");
  nn::functional::AttentionResult result = mha->forward(query, key, value, key_padding_mask, attn_mask, need_weights);
  return {mha, result.output, result.weights};
}

/// The xgrad side of every module kind in the fixture.
const std::map<std::string, Builder>& builders() {
  static const std::map<std::string, Builder> table = {
      {"Linear",
       [](Case& c) -> Run {
         auto m = build<nn::Linear>(c, c.size("in_features"), c.size("out_features"), c.flag("bias"));
         return {m, m->forward(c.in("x")), {}};
       }},
      {"Embedding",
       [](Case& c) -> Run {
         auto m = build<nn::Embedding>(c, c.size("num_embeddings"), c.size("embedding_dim"),
                                       c.optional_integer("padding_idx"));
         return {m, m->forward(c.indices("indices")), {}};
       }},
      {"LayerNorm",
       [](Case& c) -> Run {
         auto m = build<nn::LayerNorm>(c, c.size("normalized_shape"), c.real("eps"));
         return {m, m->forward(c.in("x")), {}};
       }},
      {"FeedForward",
       [](Case& c) -> Run {
         auto m = build<nn::FeedForward>(c, c.size("d_model"), c.size("dim_feedforward"), c.real("dropout"),
                                         c.text("activation"));
         m->eval();
         return {m, m->forward(c.in("x")), {}};
       }},
      {"MultiheadAttention", attention},
      {"sinusoidal_table",
       [](Case& c) -> Run {
         return {nullptr, Tensor(nn::sinusoidal_table(c.size("max_len"), c.size("d_model"))), {}};
       }},
  };
  return table;
}

/// Runs one case: build, load, forward, compare the outputs, backward with grad_output, compare
/// every input's and every parameter's gradient. Returns the failures, one line each ("" if none).
std::string run_case(const json& spec, Worst& worst) {
  std::vector<std::string> failures;
  try {
    const std::string kind = spec.at("module").get<std::string>();
    auto builder = builders().find(kind);
    if (builder == builders().end()) throw Error("no xgrad builder for module kind '" + kind + "'");
    Case c(spec);
    Run run = builder->second(c);
    for (const std::string& key : c.unread({"config", "args"})) failures.push_back("'" + key + "' not passed to xgrad");

    const json& outputs = spec.at("outputs");
    compare("output", run.output.value(), outputs.at("output"), failures, worst);
    if (outputs.contains("weights") != run.weights.defined()) {
      failures.push_back(std::string("attention weights ") + (run.weights.defined() ? "returned" : "missing"));
    } else if (run.weights.defined()) {
      compare("weights", run.weights.value(), outputs.at("weights"), failures, worst);
    }

    if (run.output.requires_grad()) run.output.backward(Tensor(array_of_json(spec.at("grad_output"))));
    const json& input_grads = spec.at("input_grads");
    for (std::size_t k = 0; k < c.inputs().size(); ++k) {
      const std::string& name = c.input_names()[k];
      const Tensor g = c.inputs()[k].grad();
      if (g.defined()) {
        compare("gradient of input " + name, g.value(), input_grads.at(name), failures, worst);
      } else if (!all_zero(input_grads.at(name))) {
        failures.push_back("gradient of input " + name + ": none reached it, torch's is nonzero");
      }
    }

    // Every xgrad parameter has torch's gradient under the same name, and the other way round.
    const json& param_grads = spec.at("param_grads");
    std::set<std::string> seen;
    if (run.module) {
      for (const auto& [name, p] : run.module->named_parameters()) {
        seen.insert(name);
        if (!param_grads.contains(name)) {
          failures.push_back("parameter " + name + ": not in torch's state_dict");
          continue;
        }
        const Tensor g = p.grad();
        if (g.defined()) {
          compare("gradient of " + name, g.value(), param_grads.at(name), failures, worst);
        } else if (!all_zero(param_grads.at(name))) {
          failures.push_back("gradient of " + name + ": none reached it, torch's is nonzero");
        }
      }
    }
    for (const auto& item : param_grads.items())
      if (!seen.count(item.key())) failures.push_back("torch parameter " + item.key() + ": no xgrad parameter");
  } catch (const std::exception& e) {
    failures.push_back(std::string("threw: ") + e.what());
  }
  std::string report;
  for (const std::string& f : failures) report += spec.at("name").get<std::string>() + ": " + f + "\n";
  return report;
}

const json& fixture() {
  static const json cases = read_cases("nn_modules.json", "make_nn_fixtures.py");
  return cases;
}

}  // namespace

TEST_CASE("every module kind in nn_modules.json has an xgrad builder, and every builder a case") {
  std::set<std::string> kinds;
  std::string unmapped;
  for (const json& spec : fixture()) {
    const std::string kind = spec.at("module").get<std::string>();
    kinds.insert(kind);
    if (!builders().count(kind)) unmapped += " " + spec.at("name").get<std::string>() + " (" + kind + ")";
  }
  std::string stale;
  for (const auto& [kind, builder] : builders())
    if (!kinds.count(kind)) stale += " " + kind;
  CHECK_MESSAGE(unmapped.empty(), "cases in nn_modules.json without an xgrad builder:" << unmapped);
  CHECK_MESSAGE(stale.empty(), "builders in this file without a case in nn_modules.json:" << stale);
  CHECK(fixture().size() >= 18);
}

TEST_CASE("xgrad's nn modules match PyTorch's (outputs, input and parameter gradients, 1e-5 relative)") {
  Worst worst;
  for (const json& spec : fixture()) {
    const std::string name = spec.at("name").get<std::string>();
    Worst worst_here;
    const std::string report = run_case(spec, worst_here);
    CHECK_MESSAGE(report.empty(), report);
    if (worst_here.error > worst.error) worst = {worst_here.error, name + ": " + worst_here.where};
  }
  MESSAGE(fixture().size() << " module cases compared with PyTorch; largest error " << worst.error << " (tolerance "
                           << kRelTol << ") at " << worst.where);
}

TEST_CASE("the module check reports case, tensor, element and both values; names must be PyTorch's") {
  // Linear(2 -> 1) with weight [[1, 2]], bias [0.5], x = [[1, 1]]: y = 3.5, dW = [[g, g]], db = g, dx = g W.
  json spec = json::parse(R"({
    "name": "probe", "module": "Linear", "config": {"in_features": 2, "out_features": 1, "bias": true},
    "state_dict": {"weight": {"shape": [1, 2], "values": [1.0, 2.0]}, "bias": {"shape": [1], "values": [0.5]}},
    "inputs": [{"name": "x", "shape": [1, 2], "values": [1.0, 1.0]}],
    "args": {},
    "outputs": {"output": {"shape": [1, 1], "values": [3.5001]}},
    "grad_output": {"shape": [1, 1], "values": [2.0]},
    "param_grads": {"weight": {"shape": [1, 2], "values": [2.0, 2.0]}, "bias": {"shape": [1], "values": [2.0001]}},
    "input_grads": {"x": {"shape": [1, 2], "values": [2.0, 4.0]}}
  })");
  Worst worst;
  std::string report = run_case(spec, worst);
  CHECK(report.find("probe: output element [0,0]: xgrad 3.5, torch 3.5001") != std::string::npos);
  CHECK(report.find("probe: gradient of bias element [0]: xgrad 2, torch 2.0001") != std::string::npos);
  CHECK(report.find("gradient of weight") == std::string::npos);
  CHECK(report.find("gradient of input x") == std::string::npos);

  spec["outputs"]["output"]["values"] = {3.5};
  spec["param_grads"]["bias"]["values"] = {2.0};
  CHECK(run_case(spec, worst).empty());

  // A parameter under another name than PyTorch's fails to load (strict load_state_dict).
  json renamed = spec;
  renamed["state_dict"]["b"] = renamed["state_dict"]["bias"];
  renamed["state_dict"].erase("bias");
  CHECK(run_case(renamed, worst).find("probe: threw:") != std::string::npos);
  // An unknown module kind and an unread config entry are failures.
  json unknown = spec;
  unknown["module"] = "Conv1d";
  CHECK(run_case(unknown, worst).find("no xgrad builder for module kind 'Conv1d'") != std::string::npos);
  json extra = spec;
  extra["config"]["device"] = "cpu";
  CHECK(run_case(extra, worst).find("'config.device' not passed to xgrad") != std::string::npos);
}
