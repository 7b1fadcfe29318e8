// distributed::DataParallel across 2 ranks (run by mpirun -np 2): rank 0 training on batch A and
// rank 1 on batch B equals one process training on A and B together, step for step; unused
// parameters, many buckets and gradient accumulation under no_sync.
#include "mpi_main.hpp"

#include <algorithm>
#include <cmath>

#include <xgrad/data/batching.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
namespace dist = xgrad::distributed;

namespace {

/// Pairs of random lengths over ids [3, vocab): the same on every rank.
std::vector<data::EncodedPair> random_pairs(std::size_t n, std::size_t vocab, std::uint64_t seed) {
  Generator generator(seed);
  std::vector<data::EncodedPair> pairs(n);
  for (auto& pair : pairs) {
    const std::size_t s = 2 + generator.integer(9), t = 1 + generator.integer(11);
    for (std::size_t i = 0; i < s; ++i) pair.source.push_back(3 + static_cast<std::int64_t>(generator.integer(vocab - 3)));
    for (std::size_t i = 0; i < t; ++i) pair.target.push_back(3 + static_cast<std::int64_t>(generator.integer(vocab - 3)));
  }
  return pairs;
}

models::TransformerConfig tiny(std::size_t vocab) {
  models::TransformerConfig c = models::TransformerConfig::preset("tiny", vocab, vocab);
  c.dropout = 0.f;
  return c;
}

double relative_difference(const nn::Module& a, const nn::Module& b) {
  double worst = 0, scale = 0;
  const auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    for (std::size_t j = 0; j < pa[i].numel(); ++j) {
      worst = std::max(worst, double(std::abs(pa[i].value().data()[j] - pb[i].value().data()[j])));
      scale = std::max(scale, double(std::abs(pb[i].value().data()[j])));
    }
  }
  return worst / scale;
}

}  // namespace

TEST_CASE("2 ranks with batches A and B equal 1 process with A and B together, for 20 Adam steps") {
  const std::size_t vocab = 13;
  const auto pairs = random_pairs(20 * 9, vocab, 5);
  // Each rank's replica starts from other weights: DataParallel gives them rank 0's.
  Generator init(dist::rank() == 0 ? 1 : 99);
  models::Transformer model(tiny(vocab), init);
  Generator same(1);
  models::Transformer reference(tiny(vocab), same);  // rank 0's weights, trained on A + B alone
  dist::DataParallelOptions options;
  options.reduce = dist::ReduceOp::sum;
  options.bucket_mb = 0.02;  // several buckets
  dist::DataParallel ddp(model, options);
  CHECK(ddp.stats().buckets > 1);
  CHECK(relative_difference(model, reference) == 0.0);
  // Two processes sum their gradients in another order than one process does, so the gradients
  // differ by rounding (about 1e-7 relative). Adam divides each gradient by its own scale, which
  // turns the rounding of near-zero gradients into steps of up to lr: eps 1e-6 (BERT's) rather
  // than 1e-8 keeps it from doing so for the key projection's bias, whose true gradient is 0
  // (softmax ignores a shift shared by all keys), and lr 1e-4 keeps what is left well inside
  // 1e-5 over 20 steps (at lr 1e-3 it reaches 1e-5 after 15-20 steps, in one process or two).
  optim::Adam adam(model.parameters(), optim::AdamOptions(1e-4).eps(1e-6));
  optim::Adam adam_ref(reference.parameters(), optim::AdamOptions(1e-4).eps(1e-6));

  for (std::size_t step = 0; step < 20; ++step) {
    // A: 5 pairs on rank 0, B: 4 on rank 1, padded each to its own longest: unequal token counts.
    std::vector<std::size_t> a, b, all;
    for (std::size_t i = 0; i < 9; ++i) (i < 5 ? a : b).push_back(step * 9 + i), all.push_back(step * 9 + i);
    const data::Batch mine = data::make_batch(pairs, dist::rank() == 0 ? a : b, 0, 1, 2);
    const data::Batch both = data::make_batch(pairs, all, 0, 1, 2);

    const double global_tokens = dist::all_reduce(double(mine.target_tokens));
    CHECK(global_tokens == double(both.target_tokens));
    adam.zero_grad();
    const Tensor local = model.loss(mine.src, mine.tgt_in, mine.tgt_out) *
                         static_cast<float>(double(mine.target_tokens) / global_tokens);
    local.backward();
    const double loss = dist::all_reduce(double(local.item()));
    adam.step();

    adam_ref.zero_grad();
    const Tensor expected = reference.loss(both.src, both.tgt_in, both.tgt_out);
    expected.backward();
    adam_ref.step();
    CAPTURE(step);
    CHECK(loss == doctest::Approx(expected.item()).epsilon(1e-5));
    CHECK(relative_difference(model, reference) < 1e-5);
  }
  CHECK(ddp.stats().synchronizations == 20);
  // The replicas stayed equal bit for bit: they applied the same gradients.
  for (const Tensor& p : model.parameters()) {
    const Tensor gathered = dist::all_gather(p.detach());
    const std::size_t n = p.numel();
    CHECK(std::equal(gathered.value().data(), gathered.value().data() + n, gathered.value().data() + n));
  }
}

namespace {

/// Two branches; forward uses the second only when asked.
class TwoBranches : public nn::Module {
 public:
  TwoBranches() : Module("TwoBranches") {
    Generator g(3);
    first = register_module("first", std::make_shared<nn::Linear>(4, 2, true, g));
    second = register_module("second", std::make_shared<nn::Linear>(4, 2, true, g));
    never = register_module("never", std::make_shared<nn::Linear>(4, 2, true, g));
  }
  Tensor forward(const Tensor& x, bool both) const {
    Tensor y = first->forward(x);
    return both ? y + second->forward(x) : y;
  }
  std::shared_ptr<nn::Linear> first, second, never;
};

}  // namespace

TEST_CASE("A parameter used on one rank only is averaged as zero elsewhere; one used nowhere keeps no gradient") {
  TwoBranches model;
  dist::DataParallel ddp(model);  // average, as PyTorch
  const Tensor x = full({3, 4}, 1.f);
  const bool both = dist::rank() == 1;
  sum(model.forward(x, both)).backward();  // no hang though rank 0 never touches `second`
  // d sum / d bias = 3 rows on the ranks that used it: the mean over 2 ranks.
  CHECK(model.first->bias.grad().value()(0) == 3.f);
  CHECK(model.second->bias.grad().value()(0) == 1.5f);
  CHECK_FALSE(model.never->bias.grad().defined());
}

TEST_CASE("Gradient accumulation under no_sync communicates once, on the last micro-batch") {
  TwoBranches model;
  dist::DataParallelOptions options;
  options.reduce = dist::ReduceOp::sum;
  dist::DataParallel ddp(model, options);
  const float r = static_cast<float>(dist::rank());
  {
    auto guard = ddp.no_sync();
    sum(model.forward(full({1, 4}, 1.f + r), true)).backward();
    CHECK(model.first->weight.grad().value()(0, 0) == 1.f + r);  // local only
  }
  CHECK(ddp.stats().synchronizations == 0);
  sum(model.forward(full({1, 4}, 1.f + r), true)).backward();
  CHECK(ddp.stats().synchronizations == 1);
  // Each rank accumulated 2 (1 + r); the sum over ranks: 2 * 1 + 2 * 2.
  CHECK(model.first->weight.grad().value()(0, 0) == 6.f);
}
