// distributed::DataParallel: data-parallel training of one module over the ranks of an MPI job,
// as torch.nn.parallel.DistributedDataParallel. Every rank holds the whole model and runs its
// own batch; after backward every rank holds the same gradients, so the same optimizer step
// keeps the replicas equal.
//
//   distributed::DataParallel ddp(model);          // rank 0's parameters and buffers to all
//   for (...) {
//     optimizer.zero_grad();
//     loss.backward();                              // gradients all-reduced in buckets meanwhile
//     optimizer.step();
//   }
//
// Buckets: the parameters, last registered first (the order backward finishes them), grouped
// into buckets of about bucket_mb (the first of first_bucket_mb). A bucket's all-reduce starts as soon as the last of its
// parameters has its gradient (a post-accumulate-grad hook), in bucket order on every rank, so
// it overlaps the rest of backward; the backward ends by starting the buckets still waiting and
// waiting for all. A parameter a rank did not use counts as a zero gradient there, and keeps no
// gradient only if no rank used it, so unused parameters never hang the collective.
//
// The loss: with ReduceOp::average (the default, as PyTorch) the gradients are the mean of the
// ranks' gradients. For a loss that is a mean over the tokens of the whole global batch, give
// each rank's loss the weight local_tokens / global_tokens (global_tokens = all_reduce of the
// counts) and use ReduceOp::sum: N ranks with batches b1..bN then give exactly the gradient of
// one process with their union.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <xgrad/distributed/distributed.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::distributed {

struct DataParallelOptions {
  double bucket_mb = 25.0;            ///< PyTorch's bucket_cap_mb
  /// The first bucket (the last parameters, whose gradients backward finishes first) is smaller,
  /// so that communication starts early, as PyTorch's first_bucket_bytes_cap (1 MB).
  double first_bucket_mb = 1.0;
  ReduceOp reduce = ReduceOp::average;  ///< average or sum
};

class DataParallel {
 public:
  /// Wraps `module` (kept by reference: it must outlive this). Checks that every rank's module
  /// has the same parameters (names and shapes), then copies rank 0's parameters and buffers to
  /// every rank. In a world of one it does nothing else.
  explicit DataParallel(nn::Module& module, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  nn::Module& module() const { return module_; }

  /// Within its scope backward only accumulates gradients locally, as PyTorch's no_sync(): for
  /// the earlier micro-batches of gradient accumulation; the backward of the last one, outside
  /// it, communicates the accumulated gradients once. With ReduceOp::sum every backward but the
  /// last of a step must be under no_sync (a second synchronisation would add the first again).
  class NoSync {
   public:
    explicit NoSync(DataParallel& owner) : owner_(owner), previous_(owner.sync_) { owner_.sync_ = false; }
    ~NoSync() { owner_.sync_ = previous_; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DataParallel& owner_;
    bool previous_;
  };
  NoSync no_sync() { return NoSync(*this); }

  /// What the synchronisation costs, summed since construction.
  struct Stats {
    std::size_t buckets = 0;          ///< per synchronisation
    std::size_t bytes = 0;            ///< all-reduced per synchronisation
    std::size_t synchronizations = 0;
    double wait_seconds = 0;          ///< spent at the end of backward waiting for the all-reduces
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Bucket;
  void on_gradient(std::size_t param);
  void launch(std::size_t bucket);
  void finish();

  nn::Module& module_;
  DataParallelOptions options_;
  std::vector<Tensor> params_;
  std::vector<std::uint64_t> hooks_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<std::size_t> bucket_of_;  // per parameter
  std::vector<bool> ready_;             // per parameter, in the backward running
  std::size_t next_launch_ = 0;         // buckets launch in order: the next one to start
  bool sync_ = true;
  bool running_ = false;                // a synchronisation is under way in this backward
  Stats stats_;
};

}  // namespace xgrad::distributed
