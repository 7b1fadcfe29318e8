// Profiler: every op seen forward and backward is counted under its name, marks attribute the
// time between ops, one profiler at a time, nothing is counted once it is gone.
#include <doctest/doctest.h>

#include <string>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

const Profiler::Row* find(const std::vector<Profiler::Row>& rows, const std::string& name) {
  for (const auto& row : rows) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("ops are counted forward and backward, marks as pseudo-ops, by name") {
  Tensor x = randn({64, 64}).set_requires_grad();
  {
    Profiler profiler;
    for (int i = 0; i < 3; ++i) {
      Tensor y = sum(relu(matmul(x, x)));
      y.backward();
      profiler.mark("update");
    }
    const auto rows = profiler.rows();
    const Profiler::Row* mm = find(rows, "matmul");
    REQUIRE(mm != nullptr);
    CHECK(mm->forward_calls == 3);
    CHECK(mm->backward_calls == 3);
    CHECK(mm->forward_ms >= 0);
    CHECK(mm->backward_ms > 0);
    REQUIRE(find(rows, "relu") != nullptr);
    CHECK(find(rows, "relu")->backward_calls == 3);
    REQUIRE(find(rows, "update") != nullptr);
    CHECK(find(rows, "update")->forward_calls == 3);
    for (std::size_t i = 1; i < rows.size(); ++i) {  // largest total first
      CHECK(rows[i - 1].forward_ms + rows[i - 1].backward_ms >= rows[i].forward_ms + rows[i].backward_ms);
    }
    const std::string table = profiler.table(3);
    CHECK(table.find("matmul") != std::string::npos);
    CHECK(table.find("all") != std::string::npos);
    CHECK_THROWS_WITH_AS(Profiler(), "Profiler: another Profiler is already alive (profile one scope at a time)",
                         Error);
  }
  Profiler later;  // the first one is gone: a new one may start, and starts empty
  CHECK(later.rows().empty());
}

TEST_CASE("decoding's ops without gradients are counted too: int8 products, gathered attention") {
  Generator generator(5);
  nn::Linear layer(64, 32, true, generator);
  layer.quantize_int8();
  const Tensor x = randn({8, 64}, generator);
  NoGradGuard no_grad;
  Profiler profiler;
  for (int i = 0; i < 2; ++i) {
    Tensor y = layer.forward(x);
    Tensor z = layer.forward(x, nn::functional::Activation::relu);
  }
  const auto rows = profiler.rows();
  REQUIRE(find(rows, "quantized_linear") != nullptr);
  CHECK(find(rows, "quantized_linear")->forward_calls == 2);
  REQUIRE(find(rows, "quantized_linear_relu") != nullptr);
  CHECK(find(rows, "quantized_linear_relu")->forward_calls == 2);

  nn::KVCache cache;  // a decoding step's self-attention over its cache
  cache.append(randn({2, 3, 8}, generator), randn({2, 3, 8}, generator), nullptr);
  Tensor attended = nn::functional::gathered_attention(randn({2, 1, 8}, generator), cache.gathered(), 2);
  const auto later = profiler.rows();
  REQUIRE(find(later, "gathered_attention") != nullptr);
  CHECK(find(later, "gathered_attention")->forward_calls == 1);
}
