// Every op against PyTorch: the values and gradients in tests/fixtures/ops.json (written by
// tests/fixtures/make_fixtures.py, which documents the format) must be matched within 1e-5
// relative. Each fixture case is mapped by name to one xgrad call below; a case without one fails.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include <xgrad/xgrad.hpp>

#include "torch_fixture.hpp"

using namespace xgrad;
using json = nlohmann::json;
using namespace torch_fixture;

namespace {

/// One fixture case as its xgrad call sees it: the float inputs and the call's other arguments
/// (the "args" section), each read ticked off (FixtureCase).
class Case : public FixtureCase {
 public:
  using FixtureCase::FixtureCase;

  float real(const char* key) { return static_cast<float>(arg(key).get<double>()); }
  std::int64_t integer(const char* key) { return arg(key).get<std::int64_t>(); }
  bool flag(const char* key) { return arg(key).get<bool>(); }
  std::string text(const char* key) { return arg(key).get<std::string>(); }
  std::vector<std::int64_t> integers(const char* key) { return arg(key).get<std::vector<std::int64_t>>(); }
  Shape shape(const char* key) { return arg(key).get<Shape>(); }
  Indices indices(const char* key) { return indices_entry("args", key); }
  Mask mask(const char* key) { return mask_entry("args", key); }
  Reduction reduction(const char* key) {
    const std::string r = text(key);
    if (r == "mean") return Reduction::Mean;
    if (r == "sum") return Reduction::Sum;
    if (r == "none") return Reduction::None;
    throw Error("fixture case " + name() + ": unknown reduction '" + r + "'");
  }

 private:
  const json& arg(const char* key) { return entry("args", key); }
};

/// What a mapped call returns: float outputs (compared, then back-propagated with the case's
/// grad_outputs) and integer outputs (compared exactly).
struct Outputs {
  std::vector<Tensor> values;
  std::vector<Indices> indices;

  Outputs(Tensor value) : values{std::move(value)} {}
  Outputs(std::vector<Tensor> pieces) : values(std::move(pieces)) {}
  Outputs(Indices index) : indices{std::move(index)} {}
  Outputs(std::tuple<Tensor, Indices> value_and_index)
      : values{std::get<0>(value_and_index)}, indices{std::get<1>(value_and_index)} {}
};

using OpCall = std::function<Outputs(Case&)>;

void compare_indices(const std::string& what, const Indices& got, const json& expected,
                     std::vector<std::string>& failures) {
  const Shape shape = shape_of_json(expected);
  const Shape got_shape(got.shape().begin(), got.shape().end());
  if (got_shape != shape) {
    failures.push_back(what + ": shape " + shape_str(got_shape) + ", torch " + shape_str(shape));
    return;
  }
  const json& values = expected.at("int64");
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::int64_t b = values.at(i).get<std::int64_t>();
    if (got.data()[i] != b) {
      failures.push_back(what + " element " + index_str(i, shape) + ": xgrad " + std::to_string(got.data()[i]) +
                         ", torch " + std::to_string(b));
    }
  }
}

/// Runs one case: the call, its outputs against torch's, backward with grad_outputs, and every
/// input's gradient against torch's. Returns the failures, one line each ("" when it passes).
std::string run_case(const json& spec, const OpCall& call, Worst& worst) {
  std::vector<std::string> failures;
  try {
    Case c(spec);
    Outputs out = call(c);
    for (const std::string& key : c.unread({"args"})) failures.push_back("'" + key + "' not passed to xgrad");

    const json& outputs = spec.at("outputs");
    const json& index_outputs = spec.at("index_outputs");
    const json& grad_outputs = spec.at("grad_outputs");
    if (out.values.size() != outputs.size() || out.indices.size() != index_outputs.size()) {
      failures.push_back("xgrad returned " + std::to_string(out.values.size()) + " float and " +
                         std::to_string(out.indices.size()) + " integer outputs, torch " +
                         std::to_string(outputs.size()) + " and " + std::to_string(index_outputs.size()));
    } else {
      for (std::size_t i = 0; i < outputs.size(); ++i)
        compare("output " + std::to_string(i), out.values[i].value(), outputs[i], failures, worst);
      for (std::size_t i = 0; i < index_outputs.size(); ++i)
        compare_indices("index output " + std::to_string(i), out.indices[i], index_outputs[i], failures);

      // d sum_i(out_i * grad_out_i) / d input: one backward per output, gradients accumulating.
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        if (!out.values[i].requires_grad()) continue;  // then no gradient arrives: caught below
        Tensor grad_out(array_of_json(grad_outputs[i]));
        out.values[i].backward(grad_out, /*retain_graph=*/i + 1 < outputs.size());
      }
      const json& grads = spec.at("grads");
      for (std::size_t k = 0; k < c.inputs().size(); ++k) {
        const std::string what = "gradient of " + c.input_names()[k];
        Tensor g = c.inputs()[k].grad();
        if (g.defined()) {
          compare(what, g.value(), grads[k], failures, worst);
        } else if (!all_zero(grads[k])) {
          failures.push_back(what + ": none reached it, torch's is nonzero");
        }
      }
    }
  } catch (const std::exception& e) {
    failures.push_back(std::string("threw: ") + e.what());
  }
  std::string report;
  for (const std::string& f : failures) report += spec.at("name").get<std::string>() + ": " + f + "\n";
  return report;
}

// --- the xgrad call of every case --------------------------------------------------------------

void add_elementwise(std::map<std::string, OpCall>& calls) {
  // The "same" pattern goes through the operators, the others through the named functions.
  const std::vector<std::string> broadcasts = {"row", "column", "outer", "left", "rank3", "rank3_both", "zero_dim"};
  calls["add_same"] = [](Case& c) { return c.in("a") + c.in("b"); };
  calls["sub_same"] = [](Case& c) { return c.in("a") - c.in("b"); };
  calls["mul_same"] = [](Case& c) { return c.in("a") * c.in("b"); };
  calls["div_same"] = [](Case& c) { return c.in("a") / c.in("b"); };
  for (const std::string& pattern : broadcasts) {
    calls["add_" + pattern] = [](Case& c) { return add(c.in("a"), c.in("b")); };
    calls["sub_" + pattern] = [](Case& c) { return sub(c.in("a"), c.in("b")); };
    calls["mul_" + pattern] = [](Case& c) { return mul(c.in("a"), c.in("b")); };
    calls["div_" + pattern] = [](Case& c) { return div(c.in("a"), c.in("b")); };
  }
  for (const char* pattern : {"same", "row", "outer", "zero_dim"})
    calls[std::string("pow_tensor_") + pattern] = [](Case& c) { return pow(c.in("a"), c.in("b")); };

  calls["add_tensor_scalar"] = [](Case& c) { return add(c.in("x"), c.real("scalar")); };
  calls["add_scalar_tensor"] = [](Case& c) { return c.real("scalar") + c.in("x"); };
  calls["sub_tensor_scalar"] = [](Case& c) { return sub(c.in("x"), c.real("scalar")); };
  calls["sub_scalar_tensor"] = [](Case& c) { return sub(c.real("scalar"), c.in("x")); };
  calls["mul_tensor_scalar"] = [](Case& c) { return mul(c.in("x"), c.real("scalar")); };
  calls["mul_scalar_tensor"] = [](Case& c) { return c.real("scalar") * c.in("x"); };
  calls["div_tensor_scalar"] = [](Case& c) { return div(c.in("x"), c.real("scalar")); };
  calls["div_scalar_tensor"] = [](Case& c) { return div(c.real("scalar"), c.in("x")); };
  for (const char* exponent : {"2", "3", "0_5", "minus_1_5", "1_75", "minus_1"})
    calls[std::string("pow_scalar_") + exponent] = [](Case& c) { return pow(c.in("x"), c.real("exponent")); };

  calls["neg"] = [](Case& c) { return -c.in("x"); };
  calls["exp"] = [](Case& c) { return exp(c.in("x")); };
  calls["log"] = [](Case& c) { return log(c.in("x")); };
  calls["sqrt"] = [](Case& c) { return sqrt(c.in("x")); };
  calls["abs"] = [](Case& c) { return abs(c.in("x")); };
  calls["tanh"] = [](Case& c) { return tanh(c.in("x")); };
  calls["sigmoid"] = [](Case& c) { return sigmoid(c.in("x")); };
  calls["relu"] = [](Case& c) { return relu(c.in("x")); };
  calls["gelu_none"] = calls["gelu_tanh"] = [](Case& c) { return gelu(c.in("x"), c.text("approximate")); };
}

void add_matmul(std::map<std::string, OpCall>& calls) {
  for (const char* pattern : {"2d", "vector_vector", "vector_matrix", "matrix_vector", "batched", "batch_matrix",
                              "matrix_batch", "broadcast_batch", "batch_vector", "vector_batch"})
    calls[std::string("matmul_") + pattern] = [](Case& c) { return matmul(c.in("a"), c.in("b")); };
}

void add_shape_ops(std::map<std::string, OpCall>& calls) {
  calls["reshape"] = calls["reshape_inferred"] = calls["reshape_flat"] = [](Case& c) {
    return reshape(c.in("x"), c.integers("shape"));
  };
  calls["view"] = [](Case& c) { return view(c.in("x"), c.integers("shape")); };
  calls["flatten"] = [](Case& c) { return flatten(c.in("x")); };
  calls["flatten_middle"] = calls["flatten_negative"] = [](Case& c) {
    return flatten(c.in("x"), c.integer("start_axis"), c.integer("end_axis"));
  };
  for (const char* name : {"2d", "3d_outer", "3d_negative"})
    calls[std::string("transpose_") + name] = [](Case& c) {
      return transpose(c.in("x"), c.integer("axis0"), c.integer("axis1"));
    };
  for (const char* name : {"201", "120", "negative"})
    calls[std::string("permute_") + name] = [](Case& c) { return permute(c.in("x"), c.integers("dims")); };
  for (const char* name : {"front", "middle", "end"})
    calls[std::string("unsqueeze_") + name] = [](Case& c) { return unsqueeze(c.in("x"), c.integer("axis")); };
  calls["squeeze_all"] = [](Case& c) { return squeeze(c.in("x")); };
  calls["squeeze_axis"] = calls["squeeze_axis_negative"] = calls["squeeze_axis_not_one"] = [](Case& c) {
    return squeeze(c.in("x"), c.integer("axis"));
  };
  for (const char* name : {"rows", "step", "negative", "clamped", "middle_axis_step"})
    calls[std::string("slice_") + name] = [](Case& c) {
      return slice(c.in("x"), c.integer("axis"), c.integer("start"), c.integer("end"), c.integer("step"));
    };
  calls["narrow"] = calls["narrow_negative_axis"] = [](Case& c) {
    return narrow(c.in("x"), c.integer("axis"), c.integer("start"), c.integer("length"));
  };
  calls["cat_axis0"] = calls["cat_axis1"] = calls["cat_negative_axis"] = [](Case& c) {
    return cat(c.inputs(), c.integer("axis"));
  };
  calls["split_size"] = calls["split_size_last_axis"] = [](Case& c) {
    return split(c.in("x"), c.integer("split_size"), c.integer("axis"));
  };
  calls["split_sizes"] = [](Case& c) { return split(c.in("x"), c.integers("sizes"), c.integer("axis")); };
  calls["chunk_even"] = calls["chunk_uneven"] = calls["chunk_fewer_pieces"] = [](Case& c) {
    return chunk(c.in("x"), c.integer("chunks"), c.integer("axis"));
  };
  calls["expand"] = calls["expand_keep"] = calls["expand_new_axes"] = [](Case& c) {
    return expand(c.in("x"), c.integers("shape"));
  };
  calls["broadcast_to"] = [](Case& c) { return broadcast_to(c.in("x"), c.shape("shape")); };
  calls["contiguous"] = [](Case& c) { return contiguous(c.in("x")); };
}

void add_reductions(std::map<std::string, OpCall>& calls) {
  calls["sum_all"] = [](Case& c) { return sum(c.in("x")); };
  calls["mean_all"] = [](Case& c) { return mean(c.in("x")); };
  for (const char* axes : {"axis0", "axis1", "last", "outer", "all_listed"}) {
    for (const char* keepdim : {"", "_keepdim"}) {
      calls[std::string("sum_") + axes + keepdim] = [](Case& c) {
        return sum(c.in("x"), c.integers("axes"), c.flag("keepdim"));
      };
      calls[std::string("mean_") + axes + keepdim] = [](Case& c) {
        return mean(c.in("x"), c.integers("axes"), c.flag("keepdim"));
      };
    }
  }
  for (const char* name : {"last", "axis0", "two_axes_biased", "keepdim", "all_correction2"})
    calls[std::string("var_") + name] = [](Case& c) {
      return var(c.in("x"), c.integers("axes"), c.integer("correction"), c.flag("keepdim"));
    };
  calls["max_all"] = [](Case& c) { return max(c.in("x")); };
  for (const char* name : {"axis0", "last", "middle_keepdim"}) {
    calls[std::string("max_") + name] = [](Case& c) { return max(c.in("x"), c.integer("axis"), c.flag("keepdim")); };
    calls[std::string("argmax_") + name] = [](Case& c) {
      return argmax(c.in("x"), c.integer("axis"), c.flag("keepdim"));
    };
  }
}

void add_softmax_layer_norm(std::map<std::string, OpCall>& calls) {
  for (const char* name : {"last", "first", "middle", "large_logits"}) {
    calls[std::string("softmax_") + name] = [](Case& c) { return softmax(c.in("x"), c.integer("axis")); };
    calls[std::string("log_softmax_") + name] = [](Case& c) { return log_softmax(c.in("x"), c.integer("axis")); };
  }
  // weight and bias are absent from the cases without them: undefined tensors, as PyTorch's None.
  for (const char* name : {"affine", "plain", "weight_only", "large_eps"})
    calls[std::string("layer_norm_") + name] = [](Case& c) {
      return layer_norm(c.in("x"), c.optional_in("weight"), c.optional_in("bias"), c.real("eps"));
    };
}

void add_embedding_masking(std::map<std::string, OpCall>& calls) {
  calls["embedding"] = calls["embedding_1d"] = [](Case& c) { return embedding(c.indices("indices"), c.in("weight")); };
  calls["embedding_padding_idx"] = calls["embedding_padding_idx_negative"] = [](Case& c) {
    return embedding(c.indices("indices"), c.in("weight"), c.integer("padding_idx"));
  };
  calls["masked_fill"] = calls["masked_fill_row_mask"] = calls["masked_fill_causal"] = [](Case& c) {
    return masked_fill(c.in("x"), c.mask("mask"), c.real("value"));
  };
  calls["where"] = calls["where_broadcast"] = calls["where_scalar_side"] = [](Case& c) {
    return xgrad::where(c.mask("condition"), c.in("a"), c.in("b"));
  };
}

void add_losses(std::map<std::string, OpCall>& calls) {
  for (const char* reduction : {"mean", "sum", "none"}) {
    const std::string r = reduction;
    for (const char* variant : {"", "_ignored", "_ignore_index_2", "_smoothing", "_smoothing_ignored"})
      calls["cross_entropy_" + r + variant] = [](Case& c) {
        CrossEntropyOptions options;
        options.ignore_index = c.integer("ignore_index");
        options.label_smoothing = c.real("label_smoothing");
        options.reduction = c.reduction("reduction");
        return cross_entropy(c.in("logits"), c.indices("targets"), options);
      };
    for (const char* variant : {"", "_ignored", "_ignore_index_2"})
      calls["nll_loss_" + r + variant] = [](Case& c) {
        return nll_loss(c.in("log_probs"), c.indices("targets"), c.integer("ignore_index"), c.reduction("reduction"));
      };
    calls["mse_loss_" + r] = [](Case& c) { return mse_loss(c.in("input"), c.in("target"), c.reduction("reduction")); };
  }
  calls["mse_loss_broadcast_target"] = calls["mse_loss_mean"];
}

/// Case name -> xgrad call, for every case in ops.json.
const std::map<std::string, OpCall>& op_calls() {
  static const std::map<std::string, OpCall> calls = [] {
    std::map<std::string, OpCall> calls;
    add_elementwise(calls);
    add_matmul(calls);
    add_shape_ops(calls);
    add_reductions(calls);
    add_softmax_layer_norm(calls);
    add_embedding_masking(calls);
    add_losses(calls);
    return calls;
  }();
  return calls;
}

const json& fixture() {
  static const json cases = read_cases("ops.json", "make_fixtures.py");
  return cases;
}

}  // namespace

TEST_CASE("every fixture case has an xgrad call and every call a fixture case") {
  std::set<std::string> in_fixture;
  std::string unmapped;
  for (const json& spec : fixture()) {
    const std::string name = spec.at("name").get<std::string>();
    in_fixture.insert(name);
    if (!op_calls().count(name)) unmapped += " " + name;
  }
  std::string stale;
  for (const auto& [name, call] : op_calls())
    if (!in_fixture.count(name)) stale += " " + name;
  CHECK_MESSAGE(unmapped.empty(), "cases in ops.json without an xgrad call in this file:" << unmapped);
  CHECK_MESSAGE(stale.empty(), "xgrad calls in this file without a case in ops.json:" << stale);
  CHECK(fixture().size() > 150);
}

TEST_CASE("xgrad matches PyTorch on every fixture case (values and gradients, 1e-5 relative)") {
  std::size_t run = 0;
  Worst worst;
  for (const json& spec : fixture()) {
    const std::string name = spec.at("name").get<std::string>();
    auto call = op_calls().find(name);
    if (call == op_calls().end()) continue;  // reported by the test above
    Worst worst_here;
    const std::string report = run_case(spec, call->second, worst_here);
    CHECK_MESSAGE(report.empty(), report);
    if (worst_here.error > worst.error) worst = {worst_here.error, name + ": " + worst_here.where};
    ++run;
  }
  MESSAGE(run << " of " << fixture().size() << " fixture cases compared with PyTorch; largest error "
              << worst.error << " (tolerance " << kRelTol << ") at " << worst.where);
}

TEST_CASE("the parity check reports case, tensor, element and both values, with a floor of 1 near 0") {
  // y = 2x with x = [1, 2, 0.5]; torch's numbers edited to be wrong in chosen places.
  json spec = json::parse(R"({
    "name": "probe", "args": {"scalar": 2.0, "unused": 1},
    "inputs": [{"name": "x", "shape": [3], "values": [1.0, 2.0, 0.5]}],
    "outputs": [{"shape": [3], "values": [2.0, 4.0001, 1.0]}],
    "index_outputs": [],
    "grad_outputs": [{"shape": [3], "values": [1e-7, 0.5, -1.0]}],
    "grads": [{"shape": [3], "values": [0.0, 1.0, -2.0001]}]
  })");
  const OpCall twice = [](Case& c) { return mul(c.in("x"), c.real("scalar")); };
  Worst worst;
  const std::string report = run_case(spec, twice, worst);
  CHECK(report.find("probe: output 0 element [1]: xgrad 4, torch 4.0001") != std::string::npos);
  // 2e-7 against 0 is inside the floor of 1e-5; -2 against -2.0001 is 5e-5 relative, outside.
  CHECK(report.find("gradient of x element [0]") == std::string::npos);
  CHECK(report.find("probe: gradient of x element [2]: xgrad -2, torch -2.0001") != std::string::npos);
  CHECK(report.find("'args.unused' not passed to xgrad") != std::string::npos);

  spec["outputs"][0]["values"] = {2.0, 4.0, 1.0};
  spec["grads"][0]["values"] = {2e-7, 1.0, -2.0};
  spec["args"].erase("unused");
  CHECK(run_case(spec, twice, worst).empty());
  spec["grads"][0]["values"] = {2e-7, 1.0, -2.00004};
  CHECK_FALSE(run_case(spec, twice, worst).empty());
}
