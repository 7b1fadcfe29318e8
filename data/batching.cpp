// Padding pairs into teacher-forcing batches, and the length-bucketed, token-budgeted sampler.
#include <xgrad/data/batching.hpp>

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/core/generator.hpp>

namespace xgrad::data {

namespace {

/// Columns a pair takes in a batch: the longer side plus its BOS or EOS.
std::size_t width(const EncodedPair& pair) { return std::max(pair.source.size(), pair.target.size()) + 1; }

void check_pair(const EncodedPair& pair, std::size_t index, const char* context) {
  if (pair.source.empty() || pair.target.empty()) {
    throw Error(fmt::format("{}: pair {} has an empty {} (source length {}, target length {})", context, index,
                            pair.source.empty() ? "source" : "target", pair.source.size(), pair.target.size()));
  }
}

void check_data(const std::vector<EncodedPair>& data, const BatchSamplerOptions& options, const char* context) {
  if (data.empty()) throw Error(fmt::format("{}: no pairs to batch", context));
  if (options.batch_tokens == 0) throw Error(fmt::format("{}: batch_tokens is 0, expected at least 1", context));
  if (options.world_size == 0 || options.rank >= options.world_size) {
    throw Error(fmt::format("{}: rank {} of a world of {}: expected 0 <= rank < world_size", context, options.rank,
                            options.world_size));
  }
  for (std::size_t i = 0; i < data.size(); ++i) check_pair(data[i], i, context);
}

/// splitmix64's finalizer: nearby inputs (seed, seed + 1, epochs) give unrelated outputs.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T>
void shuffle(std::vector<T>& items, Generator& generator) {
  for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[generator.integer(i)]);
}

/// Pair indices from the shortest pair to the longest; equal widths keep the order they came in.
std::vector<std::size_t> by_width(const std::vector<EncodedPair>& data, std::vector<std::size_t> order) {
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return width(data[a]) < width(data[b]); });
  return order;
}

/// Cuts pairs sorted by width into consecutive batches of rows x widest <= budget; a pair wider
/// than the budget is a batch of its own.
std::vector<std::vector<std::size_t>> cut(const std::vector<EncodedPair>& data, const std::vector<std::size_t>& order,
                                          std::size_t budget) {
  std::vector<std::vector<std::size_t>> batches;
  std::vector<std::size_t> current;
  for (const std::size_t index : order) {
    const std::size_t widest = width(data[index]);  // sorted: the newcomer is the widest
    if (!current.empty() && (current.size() + 1) * widest > budget) {
      batches.push_back(std::move(current));
      current.clear();
    }
    current.push_back(index);
  }
  if (!current.empty()) batches.push_back(std::move(current));
  return batches;
}

std::vector<std::size_t> identity(std::size_t n) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t(0));
  return order;
}

}  // namespace

Batch make_batch(const std::vector<EncodedPair>& data, const std::vector<std::size_t>& rows, std::int64_t pad_id,
                 std::int64_t bos_id, std::int64_t eos_id) {
  if (rows.empty()) throw Error("make_batch: no rows");
  std::size_t S = 0, T = 0;
  for (const std::size_t index : rows) {
    if (index >= data.size()) {
      throw Error(fmt::format("make_batch: row index {} is out of range for {} pairs", index, data.size()));
    }
    check_pair(data[index], index, "make_batch");
    S = std::max(S, data[index].source.size() + 1);
    T = std::max(T, data[index].target.size() + 1);
  }
  const std::size_t R = rows.size();
  Batch batch;
  batch.src = Indices::from_shape({R, S});        // (R, S)
  batch.tgt_in = Indices::from_shape({R, T});     // (R, T)
  batch.tgt_out = Indices::from_shape({R, T});    // (R, T)
  batch.src.fill(pad_id);
  batch.tgt_in.fill(pad_id);
  batch.tgt_out.fill(pad_id);
  batch.rows = rows;
  for (std::size_t r = 0; r < R; ++r) {
    const EncodedPair& pair = data[rows[r]];
    const std::size_t s = pair.source.size(), t = pair.target.size();
    for (std::size_t j = 0; j < s; ++j) batch.src(r, j) = pair.source[j];
    batch.src(r, s) = eos_id;
    batch.tgt_in(r, 0) = bos_id;
    for (std::size_t j = 0; j < t; ++j) {
      batch.tgt_in(r, j + 1) = pair.target[j];
      batch.tgt_out(r, j) = pair.target[j];
    }
    batch.tgt_out(r, t) = eos_id;
    batch.source_tokens += s + 1;
    batch.target_tokens += t + 1;
  }
  return batch;
}

BatchSampler::BatchSampler(const std::vector<EncodedPair>& data, const BatchSamplerOptions& options)
    : data_(data), options_(options) {
  check_data(data_, options_, "BatchSampler");
  plan_epoch();
}

void BatchSampler::plan_epoch() {
  Generator generator(mix(mix(options_.seed) + epoch_));
  std::vector<std::size_t> order = identity(data_.size());
  if (options_.shuffle) shuffle(order, generator);  // equal widths end up mixed, differently each epoch
  batches_ = cut(data_, by_width(data_, std::move(order)), options_.batch_tokens);
  if (options_.shuffle) shuffle(batches_, generator);
}

Batch BatchSampler::next() {
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < options_.world_size; ++r) {  // the ranks' batches, in rank order
    if (position_ == batches_.size()) {
      ++epoch_;
      position_ = 0;
      plan_epoch();
    }
    if (r == options_.rank) rows = batches_[position_];
    ++position_;
  }
  return make_batch(data_, rows, options_.pad_id, options_.bos_id, options_.eos_id);
}

void BatchSampler::seek(std::size_t epoch, std::size_t position) {
  // Every epoch cuts the same sorted widths, so every epoch has as many batches as this one.
  if (position > batches_.size()) {
    throw Error(fmt::format("BatchSampler::seek: position {} is past the end of epoch {}, which has {} batches",
                            position, epoch, batches_.size()));
  }
  if (epoch != epoch_) {
    epoch_ = epoch;
    plan_epoch();
  }
  position_ = position;
}

std::vector<Batch> BatchSampler::sequential(const std::vector<EncodedPair>& data, const BatchSamplerOptions& options) {
  check_data(data, options, "BatchSampler::sequential");
  std::vector<Batch> batches;
  for (const auto& rows : cut(data, by_width(data, identity(data.size())), options.batch_tokens)) {
    batches.push_back(make_batch(data, rows, options.pad_id, options.bos_id, options.eos_id));
  }
  return batches;
}

}  // namespace xgrad::data
