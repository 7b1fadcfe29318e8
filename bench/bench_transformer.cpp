// One training step (forward, backward, Adam) of the Transformer on the shape of the libtorch
// peer benchmark: V = 1000 source and target, the `small` preset (d 256, 8 heads, 3+3 layers,
// d_ff 1024), dropout 0.1, batch 32, source and target length 32.
// Usage: bench_transformer [--threads N] [--steps N]. Prints one JSON line.
#include <xgrad/xgrad.hpp>

#include <xtensor/xview.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

using namespace xgrad;

int main(int argc, char** argv) {
  int threads = get_num_threads(), steps = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_transformer [--threads N] [--steps N]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  const std::size_t V = 1000, B = 32, S = 32;
  models::TransformerConfig config = models::TransformerConfig::preset("small", V, V);
  config.dropout = 0.1f;
  Generator generator(0);
  models::Transformer model(config, generator);
  model.train();
  optim::Adam adam(model.parameters(), optim::AdamOptions(1e-4));

  // Token ids in [1, V): no padding, as in the peer.
  Indices src = Indices::from_shape({B, S}), tgt = Indices::from_shape({B, S + 1});
  for (auto& id : src) id = 1 + static_cast<std::int64_t>(generator.integer(V - 1));
  for (auto& id : tgt) id = 1 + static_cast<std::int64_t>(generator.integer(V - 1));
  Indices tgt_in = xt::view(tgt, xt::all(), xt::range(0, S)), tgt_out = xt::view(tgt, xt::all(), xt::range(1, S + 1));

  auto step = [&] {
    adam.zero_grad();
    Tensor loss = model.loss(src, tgt_in, tgt_out);
    loss.backward();
    adam.step();
    return loss.item();
  };
  for (int i = 0; i < 3; ++i) step();
  const auto start = std::chrono::steady_clock::now();
  float loss = 0;
  for (int i = 0; i < steps; ++i) loss = step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  std::printf("{\"impl\":\"xgrad\",\"threads\":%d,\"V\":%zu,\"D\":%zu,\"H\":%zu,\"L\":%zu,\"FF\":%zu,\"B\":%zu,\"S\":%zu,"
              "\"step_ms\":%.1f,\"tokens_per_s\":%.0f,\"loss\":%.4f}\n",
              threads, V, config.d_model, config.nhead, config.num_encoder_layers, config.dim_feedforward, B, S,
              seconds * 1e3, B * S / seconds, loss);
}
