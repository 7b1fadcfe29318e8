// int8 linear layers: the kernel against fp32 within its documented bound, layers that run int8
// only without gradients and follow their fp32 weights, and a quantized Transformer whose cached
// decoding equals its re-feeding decoding.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <vector>

#include <omp.h>

#include <xgrad/kernels/quantize.hpp>
#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;

TEST_CASE("quantized_linear stays within the documented bound of fp32, on every kind of row") {
  // A few rows (our kernel) and many (the GEMM library's); K a multiple of the vector width or
  // not; enough rows to be spread over the threads.
  for (const auto& shape :
       std::vector<std::pair<std::size_t, std::size_t>>{{6, 96}, {6, 101}, {40, 96}, {40, 101}, {300, 256}}) {
    const std::size_t M = shape.first, K = shape.second;
    CAPTURE(M);
    CAPTURE(K);
    Generator generator(7);
    const std::size_t N = 40;
    Array x = randn({M, K}, generator).value(), w = randn({N, K}, generator).value();
    for (std::size_t k = 0; k < K; ++k) {
      x(1, k) = std::max(0.f, x(1, k));  // after a ReLU: no negatives
      x(2, k) = 0.f;                     // all zeros
      x(3, k) *= 1e-4f;                  // tiny
      x(4, k) *= 1e3f;                   // large
    }
    for (std::size_t k = 0; k < K; ++k) w(5, k) = 0.f;  // a zero weight row
    const kernels::QuantizedWeight q = kernels::quantize_weight(w.data(), N, K);
    const std::size_t first = 3, count = 30;  // a slice of the rows, as a fused projection's
    std::vector<float> bias(N);
    for (std::size_t n = 0; n < N; ++n) bias[n] = 0.1f * float(n);
    std::vector<float> y(M * count);
    kernels::quantized_linear(x.data(), M, q, first, count, bias.data() + first, y.data());
    const std::vector<float> bound = kernels::quantized_error_bound(x.data(), M, w.data(), q, first, count);
    double worst_share = 0, mean_share = 0;
    for (std::size_t m = 0; m < M; ++m) {
      for (std::size_t n = 0; n < count; ++n) {
        double exact = bias[first + n];
        for (std::size_t k = 0; k < K; ++k) exact += double(x(m, k)) * w(first + n, k);
        const double error = std::abs(y[m * count + n] - exact), allowed = bound[m * count + n];
        CHECK(error <= allowed * (1 + 1e-5) + 1e-6 * std::abs(exact) + 1e-6);
        if (allowed > 0) {
          worst_share = std::max(worst_share, error / allowed);
          mean_share += error / allowed / double(M * count);
        }
      }
    }
    MESSAGE("error / bound: worst " << worst_share << ", mean " << mean_share);
    CHECK(mean_share < 0.2);  // rounding errors mostly cancel
    CHECK(y[2 * count + 0] == doctest::Approx(bias[first]));  // a zero row gives the bias
  }
}

TEST_CASE("quantized_linear gives the same numbers on one thread and spread over two or three") {
  // Products large enough to be split over the threads: the few-row kernel's blocks of W (up to
  // 8 rows), the GEMM split by columns (32 rows), each thread its own rows from quantization to
  // dequantization (130). The sums are exact in int32, so every thread count gives the same bits.
  // Row 2 holds a NaN (its outputs NaN).
  const int threads = omp_get_max_threads();
  for (const std::size_t M : {1, 3, 8, 32, 130}) {
    const std::size_t N = 1000, K = 1024 + 7;
    Generator generator(11);
    Array x = randn({M, K}, generator).value();
    const Array w = randn({N, K}, generator).value();
    if (M > 2) x(2, 7) = std::numeric_limits<float>::quiet_NaN();
    const kernels::QuantizedWeight q = kernels::quantize_weight(w.data(), N, K);
    std::vector<float> one(M * N), more(M * N);
    omp_set_num_threads(1);
    kernels::quantized_linear(x.data(), M, q, 0, N, nullptr, one.data());
    const std::vector<float> bound = kernels::quantized_error_bound(x.data(), M, w.data(), q, 0, N);
    std::size_t outside = 0;
    for (std::size_t m = 0; m < M; ++m) {
      for (std::size_t n = 0; n < N; ++n) {
        double exact = 0;
        for (std::size_t k = 0; k < K; ++k) exact += double(x(m, k)) * w(n, k);
        if (std::isnan(exact)) {
          outside += !std::isnan(one[m * N + n]);
          continue;
        }
        outside += !(std::abs(one[m * N + n] - exact) <= bound[m * N + n] * (1 + 1e-5) + 1e-6 * std::abs(exact) + 1e-6);
      }
    }
    CHECK(outside == 0);
    for (const int split : {2, 3}) {
      omp_set_num_threads(split);
      std::fill(more.begin(), more.end(), -1.f);
      kernels::quantized_linear(x.data(), M, q, 0, N, nullptr, more.data());
      CAPTURE(M);
      CAPTURE(split);
      std::size_t differ = 0;  // bit for bit, NaN included
      for (std::size_t i = 0; i < one.size(); ++i) differ += std::memcmp(&one[i], &more[i], sizeof(float)) != 0;
      CHECK(differ == 0);
    }
  }
  omp_set_num_threads(threads);
}

TEST_CASE("quantized_linear: a row with NaN gives NaN (0 with the ReLU fused); a non-finite weight is refused") {
  Array x = Array::from_shape({2, 4});
  x.fill(1.f);
  x(1, 2) = std::numeric_limits<float>::quiet_NaN();
  Array w = Array::from_shape({3, 4});
  w.fill(0.5f);
  const kernels::QuantizedWeight q = kernels::quantize_weight(w.data(), 3, 4);
  std::vector<float> y(6);
  kernels::quantized_linear(x.data(), 2, q, 0, 3, nullptr, y.data());
  CHECK(y[0] == doctest::Approx(2.f).epsilon(0.02));
  CHECK(std::isnan(y[3]));
  // With the ReLU fused: relu of the same outputs, bit for bit, and the NaN row 0, as relu sends
  // NaN.
  Array bias = {0.5f, -3.f, 0.f};
  std::vector<float> plain(6), fused(6);
  kernels::quantized_linear(x.data(), 2, q, 0, 3, bias.data(), plain.data());
  kernels::quantized_linear(x.data(), 2, q, 0, 3, bias.data(), fused.data(), true);
  CHECK(plain[1] < 0.f);
  for (std::size_t i = 0; i < 3; ++i) CHECK(fused[i] == std::max(plain[i], 0.f));
  for (std::size_t i = 3; i < 6; ++i) CHECK(fused[i] == 0.f);
  w(2, 1) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(kernels::quantize_weight(w.data(), 3, 4), doctest::Contains("weight (2, 1) is inf"), Error);
}

TEST_CASE("A quantized Linear runs int8 without gradients, fp32 with them, and follows its weight") {
  Generator generator(3);
  nn::Linear layer(64, 32, true, generator);
  const Tensor x = randn({5, 64}, generator);
  const Array exact = layer.forward(x).value();
  layer.quantize_int8();
  CHECK(layer.is_quantized());
  CHECK(layer.forward(x).value() == exact);  // gradients recorded: fp32
  Array int8;
  {
    NoGradGuard no_grad;
    int8 = layer.forward(x).value();
  }
  CHECK_FALSE(int8 == exact);
  CHECK(xt::amax(xt::abs(int8 - exact))() < 0.02f * xt::amax(xt::abs(exact))());
  layer.weight.mutable_value() *= 2.f;  // e.g. an optimizer step: the int8 copy is remade
  layer.bias.mutable_value() *= 2.f;
  NoGradGuard no_grad;
  const Array doubled = layer.forward(x).value();
  CHECK(xt::amax(xt::abs(doubled - 2.f * int8))() < 1e-4f * xt::amax(xt::abs(doubled))());
}

TEST_CASE("A quantized Transformer: cached decoding equals re-feeding, and stays near fp32") {
  Generator generator(11);
  models::TransformerConfig config = models::TransformerConfig::preset("tiny", 19, 19);
  config.dropout = 0.f;
  models::Transformer model(config, generator);
  model.eval();
  Indices src = Indices::from_shape({3, 7});
  for (auto& id : src) id = 3 + static_cast<std::int64_t>(generator.integer(16));
  NoGradGuard no_grad;
  const Indices tgt_in = src;  // any ids
  const Array fp32 = model.forward(src, tgt_in).value();
  // Per encoder layer: self-attention, its out_proj, linear1, linear2; per decoder layer also
  // cross-attention and its out_proj; and the generator.
  CHECK(nn::quantize_dynamic(model) == 2 * 4 + 2 * 6 + 1);
  const Array int8 = model.forward(src, tgt_in).value();
  CHECK(xt::amax(xt::abs(int8 - fp32))() < 0.05f * xt::amax(xt::abs(fp32))());
  const Indices cached = models::greedy_decode(model, src, 1, 2, 12, /*kv_cache=*/true);
  const Indices refed = models::greedy_decode(model, src, 1, 2, 12, /*kv_cache=*/false);
  CHECK(cached == refed);
}

TEST_CASE("A quantized Transformer saves its int8 weights and loads back the same numbers") {
  Generator generator(5);
  models::TransformerConfig config = models::TransformerConfig::preset("tiny", 17, 17);
  models::Transformer model(config, generator);
  model.eval();
  nn::quantize_dynamic(model);
  const TempDir scratch("quantized");
  const std::string fp32_path = scratch.file("fp32.safetensors"), int8_path = scratch.file("int8.safetensors");
  nn::save(model, fp32_path, {{"config", model.config().to_json()}});  // its fp32 weights, as before
  models::save(model, int8_path);
  const safetensors::File file = safetensors::read(int8_path);
  CHECK(file.metadata().at("quantization") == "int8");
  CHECK(file.dtype("transformer.decoder.layers.0.linear1.weight.int8") == safetensors::Dtype::I8);
  CHECK(file.tensors().count("transformer.decoder.layers.0.linear1.weight") == 0);
  CHECK(std::filesystem::file_size(int8_path) < std::filesystem::file_size(fp32_path) / 2);

  const auto loaded = models::load<models::Transformer>(int8_path);
  loaded->eval();
  CHECK(nn::is_quantized(*loaded));
  Indices src = Indices::from_shape({2, 6});
  for (auto& id : src) id = 3 + static_cast<std::int64_t>(generator.integer(14));
  NoGradGuard no_grad;
  CHECK(loaded->forward(src, src).value() == model.forward(src, src).value());  // the same int8 numbers
  const auto fp32 = models::load<models::Transformer>(fp32_path);
  CHECK_FALSE(nn::is_quantized(*fp32));
}

TEST_CASE("quantize_dynamic with Fp32Weights::release frees the fp32 weights, runs the same int8, saves int8 only") {
  for (const bool tied : {false, true}) {
    CAPTURE(tied);
    Generator generator(8);
    models::TransformerConfig config = models::TransformerConfig::preset("tiny", 23, 23);
    config.tie_embeddings = tied;
    models::Transformer model(config, generator);
    model.eval();
    models::Transformer kept_model(config, generator);
    kept_model.load_state_dict(model.state_dict());
    kept_model.eval();
    std::size_t fp32_floats = 0;
    for (const Tensor& p : model.parameters()) fp32_floats += p.numel();

    const std::size_t layers = nn::quantize_dynamic(model, nn::Fp32Weights::release);
    CHECK(layers == nn::quantize_dynamic(kept_model));
    const std::vector<std::string> released = nn::released_weights(model);
    CHECK(released.size() == 2 * 4 + 2 * 6 + (tied ? 0 : 1));  // a generator tied to the embedding keeps its weight
    CHECK(nn::released_weights(kept_model).empty());
    std::size_t left = 0;
    for (const Tensor& p : model.parameters()) left += p.numel();
    std::size_t linear_floats = 0;
    for (const auto& [name, p] : kept_model.named_parameters()) {
      if (std::find(released.begin(), released.end(), name) != released.end()) linear_floats += p.numel();
    }
    CHECK(linear_floats > 0);
    CHECK(left == fp32_floats - linear_floats);  // those weights' fp32 values are gone
    CHECK(model.named_parameters().size() == kept_model.named_parameters().size());

    Indices src = Indices::from_shape({2, 6});
    for (auto& id : src) id = 3 + static_cast<std::int64_t>(generator.integer(18));
    {
      NoGradGuard no_grad;
      CHECK(model.forward(src, src).value() == kept_model.forward(src, src).value());  // the same int8 numbers
      CHECK(models::greedy_decode(model, src, 1, 2, 10, true) == models::greedy_decode(kept_model, src, 1, 2, 10, true));
    }
    // With gradients recorded the layers would need fp32: a clear error, not garbage.
    CHECK_THROWS_WITH_AS(model.forward(src, src), doctest::Contains("was released by quantize_dynamic"), Error);

    const TempDir scratch("released");
    CHECK_THROWS_WITH_AS(nn::save(model, scratch.file("fp32.safetensors"), {}),
                         doctest::Contains("holds int8 values only"), Error);
    const std::string path = scratch.file("int8.safetensors"), kept_path = scratch.file("kept.safetensors");
    models::save(model, path);
    models::save(kept_model, kept_path);
    auto bytes = [](const std::string& file) {
      std::ifstream in(file, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    CHECK(bytes(path) == bytes(kept_path));  // the same file as without releasing
  }
}

TEST_CASE("Loading a quantized checkpoint: int8 kept as bytes or widened, the same model; a tied weight keeps its exact fp32") {
  for (const bool tied : {false, true}) {
    CAPTURE(tied);
    Generator generator(9);
    models::TransformerConfig config = models::TransformerConfig::preset("tiny", 19, 19);
    config.tie_embeddings = tied;
    models::Transformer model(config, generator);
    model.eval();
    const nn::StateDict original = model.state_dict();
    std::map<std::string, Array> fp32;
    for (const auto& [name, tensor] : original) fp32.emplace(name, tensor.value());
    nn::quantize_dynamic(model);
    const TempDir scratch("quantized_load");
    const std::string path = scratch.file("int8.safetensors");
    models::save(model, path);

    const auto loaded = models::load<models::Transformer>(path);  // I8 kept as bytes
    models::Transformer widened(config, generator);                // I8 read as int64
    nn::load_quantized(widened, safetensors::read(path));
    const safetensors::File bytes = safetensors::read(path, safetensors::Int8Tensors::keep);
    for (const auto& [parameter_name, weight] : loaded->named_parameters()) {
      const std::string name = parameter_name;  // a structured binding cannot be captured (CAPTURE) in C++17
      CAPTURE(name);
      CHECK(weight.value() == widened.state_dict().at(name).value());
      if (!bytes.int8_tensors().count(name + ".int8")) {
        CHECK(weight.value() == fp32.at(name));  // not quantized, or tied: the file's fp32, exactly
        continue;
      }
      // Quantized: the int8 values times their row's scale.
      const safetensors::Int8Tensor& q = bytes.get_int8(name + ".int8");
      const Array& scale = bytes.get_tensor(name + ".scale");
      REQUIRE(weight.value().size() == q.values.size());
      bool all = true;
      for (std::size_t i = 0; i < q.values.size(); ++i) {
        all = all && weight.value().data()[i] == scale(i / q.shape[1]) * static_cast<float>(q.values[i]);
      }
      CHECK(all);
    }
    if (tied) CHECK(loaded->state_dict().at("src_embed.weight").value() == fp32.at("src_embed.weight"));
    Indices src = Indices::from_shape({2, 5});
    for (auto& id : src) id = 3 + static_cast<std::int64_t>(generator.integer(16));
    NoGradGuard no_grad;
    loaded->eval();
    widened.eval();
    CHECK(loaded->forward(src, src).value() == model.forward(src, src).value());
    CHECK(widened.forward(src, src).value() == model.forward(src, src).value());
  }
}

TEST_CASE("models::load_int8 reads an int8 file into a model without fp32 weights: the same model as load + release") {
  for (const bool tied : {false, true}) {
    CAPTURE(tied);
    Generator generator(12);
    models::TransformerConfig config = models::TransformerConfig::preset("tiny", 21, 21);
    config.tie_embeddings = tied;
    models::Transformer model(config, generator);
    model.eval();
    const TempDir scratch("load_int8");
    const std::string fp32_path = scratch.file("fp32.safetensors"), int8_path = scratch.file("int8.safetensors");
    models::save(model, fp32_path);
    nn::quantize_dynamic(model);
    models::save(model, int8_path);

    // The reference: loaded with its fp32 weights, then released.
    const auto reference = models::load<models::Transformer>(int8_path);
    nn::quantize_dynamic(*reference, nn::Fp32Weights::release);
    reference->eval();
    for (const std::string& path : {int8_path, fp32_path}) {
      CAPTURE(path);
      const auto loaded = models::load_int8<models::Transformer>(path);
      loaded->eval();
      CHECK(nn::released_weights(*loaded) == nn::released_weights(*reference));
      CHECK(nn::released_weights(*loaded).size() == 2 * 4 + 2 * 6 + (tied ? 0 : 1));
      const nn::StateDict expected = reference->state_dict();
      for (const auto& [parameter_name, tensor] : loaded->state_dict()) {
        const std::string name = parameter_name;
        CAPTURE(name);
        CHECK(tensor.shape() == expected.at(name).shape());  // a released weight is (out, 0)
        CHECK(tensor.value() == expected.at(name).value());
      }
      Indices src = Indices::from_shape({2, 6});
      for (auto& id : src) id = 3 + static_cast<std::int64_t>(generator.integer(18));
      NoGradGuard no_grad;
      CHECK(loaded->forward(src, src).value() == reference->forward(src, src).value());
      CHECK(models::greedy_decode(*loaded, src, 1, 2, 8, true) == models::greedy_decode(*reference, src, 1, 2, 8, true));
    }
  }
}

TEST_CASE("Int8WeightsOnly: layers built without fp32 weights say so until a quantized file gives them values") {
  Generator generator(3);
  std::shared_ptr<nn::Linear> linear;
  {
    nn::Int8WeightsOnly no_fp32_weights;
    CHECK(nn::Int8WeightsOnly::active());
    linear = std::make_shared<nn::Linear>(6, 4, true, generator);
  }
  CHECK_FALSE(nn::Int8WeightsOnly::active());
  CHECK(linear->weight.shape() == Shape{4, 0});
  CHECK(nn::released_weights(*linear) == std::vector<std::string>{"weight"});
  const Tensor x(Array::from_shape({2, 6}));
  {
    NoGradGuard no_grad;
    CHECK_THROWS_WITH_AS(linear->forward(x), doctest::Contains("has no int8 values yet"), Error);
  }
  CHECK_THROWS_WITH_AS(linear->forward(x), doctest::Contains("never made (Int8WeightsOnly)"), Error);

  // A file of another shape is refused, naming the weight and both shapes.
  nn::Linear other(5, 4, true, generator);
  nn::quantize_dynamic(other);
  const TempDir scratch("int8_only");
  const std::string path = scratch.file("other.safetensors");
  nn::save_quantized(other, path, {});
  CHECK_THROWS_WITH_AS(nn::load_quantized(*linear, safetensors::read(path, safetensors::Int8Tensors::keep)),
                       doctest::Contains("weight.int8 is (4, 5) but the model's weight is (4, 6)"), Error);

  // The right shape: the layer runs in int8, as one loaded with fp32 weights and released.
  nn::Linear same(6, 4, true, generator);
  nn::quantize_dynamic(same, nn::Fp32Weights::release);
  const std::string same_path = scratch.file("same.safetensors");
  nn::save_quantized(same, same_path, {});
  nn::load_quantized(*linear, safetensors::read(same_path, safetensors::Int8Tensors::keep));
  Array values = Array::from_shape({2, 6});
  for (std::size_t i = 0; i < values.size(); ++i) values.data()[i] = 0.25f * static_cast<float>(i) - 1.f;
  NoGradGuard no_grad;
  CHECK(linear->forward(Tensor(values)).value() == same.forward(Tensor(values)).value());
}

TEST_CASE("models::load_int8 for every model of the zoo: GPT and the encoder classifier as load + release") {
  const TempDir scratch("load_int8_zoo");
  Generator generator(4);
  Indices ids = Indices::from_shape({2, 7});
  for (auto& id : ids) id = 1 + static_cast<std::int64_t>(generator.integer(20));
  const auto check = [&](auto& model, const std::string& name) {
    using Model = std::decay_t<decltype(model)>;
    model.eval();
    nn::quantize_dynamic(model);
    const std::string path = scratch.file(name + ".safetensors");
    models::save(model, path);
    const auto reference = models::load<Model>(path);
    nn::quantize_dynamic(*reference, nn::Fp32Weights::release);
    const auto loaded = models::load_int8<Model>(path);
    reference->eval();
    loaded->eval();
    CHECK(!nn::released_weights(*loaded).empty());
    CHECK(nn::released_weights(*loaded) == nn::released_weights(*reference));
    NoGradGuard no_grad;
    CHECK(loaded->forward(ids).value() == reference->forward(ids).value());
    CHECK(loaded->forward(ids).value() == model.forward(ids).value());
  };
  const auto tiny = [](auto config) {  // the same small shape for either model's config
    config.vocab = 21;
    config.d_model = 16;
    config.nhead = 2;
    config.dim_feedforward = 32;
    return config;
  };
  models::GPT gpt(tiny(models::GPTConfig{}));
  check(gpt, "gpt");
  models::EncoderClassifier classifier(tiny(models::EncoderClassifierConfig{}));
  check(classifier, "classifier");
}
