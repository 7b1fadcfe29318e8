// nn layers: PyTorch's default initialisation, shapes, gradchecks through each module, RoPE's
// defining property, bad input. Numbers against PyTorch itself: test_torch_modules.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
using namespace xgrad::nn;

namespace {
using Inputs = const std::vector<Tensor>&;

Tensor param(const Shape& shape, std::uint64_t seed) {
  Generator g(seed);
  return uniform(shape, -1.f, 1.f, g).set_requires_grad(true);
}

/// Gradcheck of a module's output with respect to its input and every parameter.
template <class Forward>
bool gradcheck_module(Module& module, const Tensor& input, Forward forward) {
  std::vector<Tensor> tensors{input};
  for (const Tensor& p : module.parameters()) tensors.push_back(p);
  return bool(gradcheck([&](Inputs in) { return forward(in[0]); }, tensors));
}
}  // namespace

TEST_CASE("init: Linear's default bounds, xavier and kaiming bounds, fans") {
  Generator g(0);
  Linear linear(100, 30, true, g);
  CHECK(xt::amax(xt::abs(linear.weight.value()))() <= 0.1f);
  CHECK(xt::amax(xt::abs(linear.weight.value()))() > 0.09f);
  CHECK(xt::amax(xt::abs(linear.bias.value()))() <= 0.1f);
  Tensor t = zeros({40, 60});
  CHECK(init::calculate_fan_in_and_fan_out(t) == std::pair<std::size_t, std::size_t>{60, 40});
  init::xavier_uniform_(t, 1.0, g);
  const float xavier = std::sqrt(6.f / 100.f);
  CHECK(xt::amax(xt::abs(t.value()))() <= xavier);
  CHECK(xt::amax(xt::abs(t.value()))() > 0.95f * xavier);
  init::kaiming_normal_(t, 0.0, init::FanMode::FanIn, "relu", g);
  const float std = std::sqrt(xt::mean(t.value() * t.value())());
  CHECK(std == doctest::Approx(std::sqrt(2.f / 60.f)).epsilon(0.05));
  CHECK(init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  CHECK_THROWS_WITH_AS(init::calculate_fan_in_and_fan_out(zeros({3})), doctest::Contains("rank >= 2"), Error);
  Generator a(7), b(7);
  Linear same1(4, 4, true, a), same2(4, 4, true, b);
  CHECK(same1.weight.value() == same2.weight.value());  // seeded
}

TEST_CASE("Linear, LayerNorm, FeedForward: shapes and gradchecks through the module") {
  Generator g(1);
  Linear linear(4, 3, true, g);
  Tensor x = param({2, 5, 4}, 2);
  CHECK(linear.forward(x).shape() == Shape{2, 5, 3});
  CHECK(gradcheck_module(linear, x, [&](const Tensor& in) { return linear.forward(in); }));

  LayerNorm norm(4);
  init::normal_(norm.weight, 1.0, 0.2, g);
  init::normal_(norm.bias, 0.0, 0.2, g);
  CHECK(gradcheck_module(norm, x, [&](const Tensor& in) { return norm.forward(in); }));

  FeedForward ff(4, 8, 0.f, "gelu", g);
  CHECK(ff.forward(x).shape() == Shape{2, 5, 4});
  CHECK(gradcheck_module(ff, x, [&](const Tensor& in) { return ff.forward(in); }));
  std::vector<std::string> names;
  for (auto& [name, p] : ff.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"});
  CHECK_THROWS_WITH_AS(FeedForward(4, 8, 0.f, "swish"), doctest::Contains("relu\" or \"gelu"), Error);
}

TEST_CASE("Embedding: N(0,1) table, padding row zero and without gradient") {
  Generator g(3);
  Embedding table(10, 4, 0, g);
  for (std::size_t j = 0; j < 4; ++j) CHECK(table.weight.value()(0, j) == 0.f);
  Indices ids = {{0, 3, 3}, {9, 0, 1}};
  Tensor out = table.forward(ids);
  CHECK(out.shape() == Shape{2, 3, 4});
  out.backward(ones({2, 3, 4}));
  CHECK(table.weight.grad().value()(0, 0) == 0.f);
  CHECK(table.weight.grad().value()(3, 0) == 2.f);
  CHECK_THROWS_WITH_AS(Embedding(10, 4, 10), doctest::Contains("padding_idx 10 is out of range"), Error);
}

TEST_CASE("Dropout: identity in eval, zeroes about p of the elements in training") {
  Dropout drop(0.25f);
  Tensor x = ones({100, 100});
  drop.eval();
  CHECK(drop.forward(x).value() == x.value());
  drop.train();
  const Array y = drop.forward(x).value();
  const float kept = static_cast<float>(xt::sum(xt::cast<float>(xt::not_equal(y, 0.f)))()) / 10000.f;
  CHECK(kept == doctest::Approx(0.75).epsilon(0.03));
  CHECK(xt::amax(y)() == doctest::Approx(1.f / 0.75f));
}

TEST_CASE("sinusoidal table follows the paper's formula") {
  Array pe = sinusoidal_table(50, 8);
  for (std::size_t pos : {0u, 1u, 17u, 49u}) {
    for (std::size_t i = 0; i < 4; ++i) {
      const double angle = pos / std::pow(10000.0, 2.0 * i / 8.0);
      CHECK(pe(pos, 2 * i) == doctest::Approx(std::sin(angle)).epsilon(1e-5));
      CHECK(pe(pos, 2 * i + 1) == doctest::Approx(std::cos(angle)).epsilon(1e-5));
    }
  }
  SinusoidalPositionalEncoding encoding(8, 50);
  CHECK(encoding.state_dict().empty());  // non-persistent, as the reference model's buffer
  Tensor x = zeros({2, 3, 8});
  CHECK(encoding.forward(x, 5).value()(1, 2, 0) == doctest::Approx(std::sin(7.0)));
  CHECK_THROWS_WITH_AS(encoding.forward(zeros({1, 51, 8})), doctest::Contains("exceed max_len 50"), Error);
  LearnedPositionalEmbedding learned(10, 8);
  Tensor y = param({2, 3, 8}, 4);
  CHECK(gradcheck_module(learned, y, [&](const Tensor& in) { return learned.forward(in, 2); }));
}

TEST_CASE("RoPE: rotations preserve norms, q.k depends only on the position difference, gradcheck") {
  const std::size_t H = 2, dh = 8;
  RotaryEmbedding rope(dh, 64);
  Tensor q = param({1, 1, H * dh}, 5), k = param({1, 1, H * dh}, 6);
  auto dot_at = [&](std::size_t pq, std::size_t pk) {
    Array a = rope.forward(q, H, pq).value(), b = rope.forward(k, H, pk).value();
    double dot = 0;
    for (std::size_t i = 0; i < dh; ++i) dot += double(a(0, 0, i)) * b(0, 0, i);  // head 0
    return dot;
  };
  CHECK(dot_at(3, 1) == doctest::Approx(dot_at(12, 10)).epsilon(1e-5));
  CHECK(dot_at(3, 1) != doctest::Approx(dot_at(3, 2)).epsilon(1e-3));
  Array r = rope.forward(q, H, 9).value();
  CHECK(xt::sum(r * r)() == doctest::Approx(xt::sum(q.value() * q.value())()).epsilon(1e-5));
  Tensor x = param({2, 3, H * dh}, 7);
  CHECK(gradcheck([&](Inputs in) { return rope.forward(in[0], H, 4); }, {x}));
  CHECK_THROWS_WITH_AS(rope.forward(x, 3), doctest::Contains("RotaryEmbedding: expected input"), Error);
  CHECK_THROWS_WITH_AS(RotaryEmbedding(7), doctest::Contains("even"), Error);
}

TEST_CASE("MultiheadAttention: PyTorch's parameter names and shapes, masks, gradchecks with and without RoPE") {
  Generator g(8);
  for (bool rotary : {false, true}) {
    CAPTURE(rotary);
    MultiheadAttentionOptions options(8, 2);
    options.rotary = rotary;
    MultiheadAttention mha(options, g);
    std::vector<std::string> names;
    for (auto& [name, p] : mha.named_parameters()) names.push_back(name + shape_str(p.shape()));
    CHECK(names == std::vector<std::string>{"in_proj_weight[24,8]", "in_proj_bias[24]", "out_proj.weight[8,8]",
                                            "out_proj.bias[8]"});
    init::normal_(mha.in_proj_bias, 0.0, 0.1, g);
    init::normal_(mha.out_proj->bias, 0.0, 0.1, g);
    Tensor x = param({2, 4, 8}, 9), memory = param({2, 5, 8}, 10);
    Mask padding = {{false, false, false, true, true}, {false, false, false, false, false}};
    const Array causal = functional::causal_mask(4);
    CHECK(gradcheck_module(mha, x, [&](const Tensor& in) { return mha.forward(in, in, in, std::nullopt, causal).output; }));
    CHECK(gradcheck_module(mha, x, [&](const Tensor& in) { return mha.forward(in, memory, memory, padding).output; }));
  }
}

TEST_CASE("MultiheadAttention: boolean and additive masks agree; padded keys do not matter") {
  Generator g(11);
  MultiheadAttention mha(8, 2, 0.f, g);
  Tensor x = param({1, 3, 8}, 12);
  Mask blocked = {{false, true, true}, {false, false, true}, {false, false, false}};
  CHECK(xt::allclose(mha.forward(x, x, x, std::nullopt, blocked).output.value(),
                     mha.forward(x, x, x, std::nullopt, functional::causal_mask(3)).output.value()));
  // Changing a padded key's value changes nothing.
  Tensor memory = param({1, 4, 8}, 13);
  Mask padding = {{false, false, true, true}};
  Array before = mha.forward(x, memory, memory, padding).output.value();
  memory.mutable_value()(0, 3, 0) += 5.f;
  CHECK(xt::allclose(mha.forward(x, memory, memory, padding).output.value(), before));
  CHECK_THROWS_WITH_AS(MultiheadAttention(10, 3), doctest::Contains("multiple of num_heads"), Error);
  CHECK_THROWS_WITH_AS(mha.forward(zeros({1, 3, 4}), x, x), doctest::Contains("must be (B, L, 8)"), Error);
}
