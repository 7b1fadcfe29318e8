// Bucketed gradient all-reduce driven by post-accumulate-grad hooks.
#include <xgrad/distributed/data_parallel.hpp>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include <xgrad/autograd/tape.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad::distributed {

/// A bucket's flat buffer: its parameters' gradients one after another, then one flag per
/// parameter (1 where the rank has a gradient for it), all summed by one all-reduce.
struct DataParallel::Bucket {
  std::vector<std::size_t> params;
  std::vector<std::size_t> offsets;  // where each parameter's gradient starts in data
  std::vector<float> data;
  std::size_t waiting = 0;           // parameters whose gradient is not final yet
  detail::PendingReduce reduce;
};

DataParallel::DataParallel(nn::Module& module, DataParallelOptions options) : module_(module), options_(options) {
  if (options_.reduce != ReduceOp::average && options_.reduce != ReduceOp::sum) {
    throw Error("DataParallel: gradients are reduced by average or sum");
  }
  if (!(options_.bucket_mb > 0) || !(options_.first_bucket_mb > 0)) {
    throw Error(fmt::format("DataParallel: bucket_mb and first_bucket_mb must be > 0, got {} and {}",
                            options_.bucket_mb, options_.first_bucket_mb));
  }
  std::string signature;  // every parameter's name and shape: the ranks must agree on it
  for (const auto& [name, p] : module.named_parameters()) {
    if (!p.requires_grad()) continue;
    params_.push_back(p);
    signature += name + shape_str(p.shape()) + ";";
  }
  if (world_size() == 1) return;
  const std::vector<std::string> signatures = all_gather(signature);
  for (int r = 1; r < world_size(); ++r) {
    if (signatures[r] != signatures[0]) {
      throw Error(fmt::format("DataParallel: rank {}'s module has other parameters than rank 0's ({} and {} "
                              "characters of names and shapes): every rank must build the same model",
                              r, signatures[r].size(), signatures[0].size()));
    }
  }
  {
    NoGradGuard no_grad;
    for (const Tensor& p : params_) broadcast(p);
    for (const auto& [name, b] : module.named_buffers()) broadcast(b);
  }

  // Buckets over the parameters in reverse order of registration.
  auto floats = [](double mb) { return std::max<std::size_t>(1, static_cast<std::size_t>(mb * 1024 * 1024 / sizeof(float))); };
  const std::size_t first_cap = floats(std::min(options_.first_bucket_mb, options_.bucket_mb));
  const std::size_t cap = floats(options_.bucket_mb);
  bucket_of_.resize(params_.size());
  std::size_t filled = 0;
  for (std::size_t i = params_.size(); i-- > 0;) {
    if (buckets_.empty() || (filled + params_[i].numel() > (buckets_.size() == 1 ? first_cap : cap) && filled > 0)) {
      buckets_.push_back(std::make_unique<Bucket>());
      filled = 0;
    }
    Bucket& bucket = *buckets_.back();
    bucket.offsets.push_back(filled);
    bucket.params.push_back(i);
    bucket_of_[i] = buckets_.size() - 1;
    filled += params_[i].numel();
  }
  for (auto& bucket : buckets_) {
    std::size_t size = 0;
    for (const std::size_t i : bucket->params) size += params_[i].numel();
    bucket->data.assign(size + bucket->params.size(), 0.f);
    stats_.bytes += bucket->data.size() * sizeof(float);
  }
  stats_.buckets = buckets_.size();
  ready_.assign(params_.size(), false);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    hooks_.push_back(params_[i].register_post_accumulate_grad_hook([this, i](const Tensor&) { on_gradient(i); }));
  }
}

DataParallel::~DataParallel() {
  for (std::size_t i = 0; i < hooks_.size(); ++i) params_[i].remove_post_accumulate_grad_hook(hooks_[i]);
}

void DataParallel::on_gradient(std::size_t param) {
  if (!sync_ || ready_[param]) return;
  if (!running_) {
    running_ = true;
    for (auto& bucket : buckets_) bucket->waiting = bucket->params.size();
    queue_backward_callback([this] { finish(); });
  }
  ready_[param] = true;
  --buckets_[bucket_of_[param]]->waiting;
  // Start every bucket, in order, whose gradients are all final; let the started ones move on.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_]->waiting == 0) launch(next_launch_++);
  for (std::size_t b = 0; b < next_launch_; ++b) buckets_[b]->reduce.test();
}

void DataParallel::launch(std::size_t b) {
  Bucket& bucket = *buckets_[b];
  const std::size_t flags = bucket.data.size() - bucket.params.size();
  for (std::size_t k = 0; k < bucket.params.size(); ++k) {
    const Tensor& p = params_[bucket.params[k]];
    float* to = bucket.data.data() + bucket.offsets[k];
    const std::shared_ptr<Array>& grad = p.impl()->grad;
    if (grad) std::copy_n(grad->data(), p.numel(), to);
    else std::fill_n(to, p.numel(), 0.f);  // unused here: a zero gradient
    bucket.data[flags + k] = grad ? 1.f : 0.f;
  }
  bucket.reduce = detail::PendingReduce(bucket.data.data(), bucket.data.size());
}

void DataParallel::finish() {
  while (next_launch_ < buckets_.size()) launch(next_launch_++);  // buckets with unused parameters
  const auto start = std::chrono::steady_clock::now();
  for (auto& bucket : buckets_) bucket->reduce.wait();
  stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const float scale = options_.reduce == ReduceOp::average ? 1.f / static_cast<float>(world_size()) : 1.f;
  for (auto& bucket : buckets_) {
    const std::size_t flags = bucket->data.size() - bucket->params.size();
    for (std::size_t k = 0; k < bucket->params.size(); ++k) {
      const Tensor& p = params_[bucket->params[k]];
      std::shared_ptr<Array>& grad = p.impl()->grad;
      if (bucket->data[flags + k] == 0.f) continue;  // no rank used it: it keeps no gradient
      if (!grad) grad = std::make_shared<Array>(Array::from_shape(p.shape()));
      const float* from = bucket->data.data() + bucket->offsets[k];
      float* to = grad->data();
      for (std::size_t j = 0; j < p.numel(); ++j) to[j] = from[j] * scale;
    }
  }
  std::fill(ready_.begin(), ready_.end(), false);
  next_launch_ = 0;
  running_ = false;
  ++stats_.synchronizations;
}

}  // namespace xgrad::distributed
