// Data-parallel training, on bench_transformer's shapes (V = 1000, batch 32 x 32 per rank,
// dropout 0.1), run alone or under mpirun:
//   bench_distributed [--threads N] [--steps N] [--model small|base] [--bucket-mb M]
//   mpirun -np 2 bench_distributed --threads 1
// Each rank trains on its own batch; distributed::DataParallel sums the gradients (the loss of
// each rank weighted by its share of the global batch's tokens, as seq2seq train does); Adam.
// Rank 0 prints one JSON line: the step time, the global tokens/s, the bytes all-reduced per
// step, the time per step spent waiting for the all-reduces at the end of backward (what the
// overlap with backward did not hide) and its share of the step, and the time one all-reduce of
// all the gradients takes alone (allreduce_ms: the communication if nothing overlapped).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
namespace dist = xgrad::distributed;

namespace {

constexpr std::size_t kVocab = 1000, kBatch = 32, kSrcLen = 32, kTgtLen = 32;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int usage() {
  std::fprintf(stderr, "usage: [mpirun -np N] bench_distributed [--threads N] [--steps N] [--model small|base] "
                       "[--bucket-mb M]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment world(argc, argv);
  int threads = dist::default_threads(), steps = 10;
  double bucket_mb = 25;
  std::string model_name = "small";
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--threads") && has_value) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && has_value) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--model") && has_value) model_name = argv[++i];
    else if (!std::strcmp(argv[i], "--bucket-mb") && has_value) bucket_mb = std::atof(argv[++i]);
    else return usage();
  }
  if (threads < 1 || steps < 1 || !(bucket_mb > 0) || (model_name != "small" && model_name != "base")) return usage();
  set_num_threads(threads);
  const bool lead = dist::rank() == 0;
  if (lead) std::cout << runtime_info() << std::endl;

  models::TransformerConfig config = models::TransformerConfig::preset(model_name, kVocab, kVocab);
  config.dropout = 0.1f;
  Generator generator(0);
  models::Transformer model(config, generator);
  model.train();
  dist::DataParallelOptions options;
  options.reduce = dist::ReduceOp::sum;
  options.bucket_mb = bucket_mb;
  dist::DataParallel ddp(model, options);
  optim::Adam adam(model.parameters(), optim::AdamOptions(1e-4));

  // Each rank its own tokens in [1, V): no padding. tgt (B, T+1): input [0, T), target [1, T].
  Generator data(100 + static_cast<std::uint64_t>(dist::rank()));
  Indices src = Indices::from_shape({kBatch, kSrcLen}), tgt = Indices::from_shape({kBatch, kTgtLen + 1});
  for (auto& id : src) id = 1 + static_cast<std::int64_t>(data.integer(kVocab - 1));
  for (auto& id : tgt) id = 1 + static_cast<std::int64_t>(data.integer(kVocab - 1));
  const Indices tgt_in = xt::view(tgt, xt::all(), xt::range(0, kTgtLen));
  const Indices tgt_out = xt::view(tgt, xt::all(), xt::range(1, kTgtLen + 1));

  auto step = [&] {
    const double local = double(kBatch * kTgtLen), global = dist::all_reduce(local);
    adam.zero_grad();
    const Tensor loss = model.loss(src, tgt_in, tgt_out) * static_cast<float>(local / global);
    loss.backward();
    adam.step();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up
  dist::barrier();
  const double wait_before = ddp.stats().wait_seconds;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double seconds = seconds_since(start) / steps;
  const double wait = (ddp.stats().wait_seconds - wait_before) / steps;
  const double slowest = dist::all_reduce(seconds, dist::ReduceOp::max);
  const double most_wait = dist::all_reduce(wait, dist::ReduceOp::max);

  // The same gradients' bytes all-reduced alone, nothing to overlap with: the fastest of 10.
  std::size_t floats = 0;
  for (const Tensor& p : model.parameters()) floats += p.numel();
  Array grads = Array::from_shape({floats});
  grads.fill(1.f);
  double alone = 1e9;
  for (int i = 0; i < 10; ++i) {
    dist::barrier();
    const auto t = std::chrono::steady_clock::now();
    dist::all_reduce(grads);
    alone = std::min(alone, seconds_since(t));
  }
  alone = dist::all_reduce(alone, dist::ReduceOp::max);

  if (lead) {
    const int ranks = dist::world_size();
    std::printf("{\"impl\":\"xgrad\",\"mode\":\"data_parallel\",\"model\":\"%s\",\"ranks\":%d,\"threads_per_rank\":%d,"
                "\"batch_per_rank\":%zu,\"steps\":%d,\"step_ms\":%.1f,\"tokens_per_s\":%.0f,\"buckets\":%zu,"
                "\"allreduce_mb_per_step\":%.2f,\"wait_ms_per_step\":%.2f,\"wait_share\":%.3f,\"allreduce_ms\":%.2f}\n",
                model_name.c_str(), ranks, threads, kBatch, steps, slowest * 1e3,
                ranks * double(kBatch * kTgtLen) / slowest, ddp.stats().buckets, floats * 4.0 / 1e6, most_wait * 1e3,
                most_wait / slowest, alone * 1e3);
  }
  return 0;
}
