#include <xgrad/nn/kv_cache.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/core/precision.hpp>
#include <xgrad/kernels/bf16.hpp>

namespace xgrad::nn {

namespace {

/// x (B, P, width) gathered from per-position blocks (N_s, width) along paths (B, P).
Tensor along_paths(const std::vector<Array>& blocks, const std::vector<std::uint32_t>& paths, std::size_t batch) {
  const std::size_t length = blocks.size(), width = length > 0 ? blocks[0].shape()[1] : 0;
  Array out = Array::from_shape({batch, length, width});  // (B, P, width)
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t s = 0; s < length; ++s) {
      std::copy_n(blocks[s].data() + paths[b * length + s] * width, width, out.data() + (b * length + s) * width);
    }
  }
  return Tensor(std::move(out));
}

/// Position i of x (B, T, width): (B, width).
Array position(const Array& x, std::size_t i) {
  const std::size_t batch = x.shape()[0], t = x.shape()[1], width = x.shape()[2];
  Array block = Array::from_shape({batch, width});
  for (std::size_t b = 0; b < batch; ++b) std::copy_n(x.data() + (b * t + i) * width, width, block.data() + b * width);
  return block;
}

}  // namespace

void KVCache::append(const Tensor& k, const Tensor& v, const Mask* padding) {
  const Shape ks = k.shape(), vs = v.shape();
  if (ks.size() != 3 || vs.size() != 3 || ks[0] != vs[0] || ks[1] != vs[1]) {
    throw Error(fmt::format("KVCache::append: keys {} and values {} must be (B, T, D) and (B, T, Dv)", shape_str(ks),
                            shape_str(vs)));
  }
  if (length() > 0 && (ks[0] != batch_ || ks[2] != keys_[0].shape()[1] || vs[2] != values_[0].shape()[1])) {
    throw Error(fmt::format("KVCache::append: keys {} and values {} do not match the cache's batch {} and widths {} "
                            "and {}",
                            shape_str(ks), shape_str(vs), batch_, keys_[0].shape()[1], values_[0].shape()[1]));
  }
  if (padding && (padding->dimension() != 2 || padding->shape()[0] != ks[0] || padding->shape()[1] != ks[1])) {
    throw Error(fmt::format("KVCache::append: padding {} must be (B, T) = [{},{}]",
                            shape_str(Shape(padding->shape().begin(), padding->shape().end())), ks[0], ks[1]));
  }
  const std::size_t rows = ks[0], t = ks[1], past = length();
  const bool bf16 = autocast_precision() == Precision::bf16;  // attention's inputs in bf16: store them so
  for (std::size_t i = 0; i < t; ++i) {
    keys_.push_back(position(k.value(), i));
    values_.push_back(position(v.value(), i));
    if (bf16) {
      kernels::round_bf16(keys_.back().data(), keys_.back().size(), keys_.back().data());
      kernels::round_bf16(values_.back().data(), values_.back().size(), values_.back().data());
    }
    Mask fed;  // 0-d: no padding
    if (padding) {
      fed = Mask::from_shape({rows});
      for (std::size_t b = 0; b < rows; ++b) fed(b) = (*padding)(b, i);
    }
    padding_.push_back(std::move(fed));
  }
  std::vector<std::uint32_t> paths(rows * (past + t));  // (B, P + T): each row continues itself
  for (std::size_t b = 0; b < rows; ++b) {
    if (past > 0) std::copy_n(paths_.data() + b * past, past, paths.data() + b * (past + t));
    std::fill_n(paths.data() + b * (past + t) + past, t, static_cast<std::uint32_t>(b));
  }
  paths_ = std::move(paths);
  batch_ = rows;
}

void KVCache::reorder(const std::vector<std::size_t>& rows) {
  for (const std::size_t r : rows) {
    if (r >= batch_) throw Error(fmt::format("KVCache::reorder: row {} of a batch of {}", r, batch_));
  }
  const std::size_t p = length();
  std::vector<std::uint32_t> paths(rows.size() * p);  // (B', P): row i takes row rows[i]'s path
  for (std::size_t i = 0; i < rows.size(); ++i) std::copy_n(paths_.data() + rows[i] * p, p, paths.data() + i * p);
  paths_ = std::move(paths);
  batch_ = rows.size();
}

functional::GatheredKeyValues KVCache::gathered(std::size_t group) const {
  functional::GatheredKeyValues kv;
  kv.length = length();
  for (std::size_t s = 0; s < kv.length; ++s) {
    kv.keys.push_back(&keys_[s]);
    kv.values.push_back(&values_[s]);
    kv.padding.push_back(padding_[s].dimension() == 1 ? &padding_[s] : nullptr);
  }
  kv.index = &paths_;
  kv.group = group;
  return kv;
}

Tensor KVCache::keys() const { return along_paths(keys_, paths_, batch_); }

Tensor KVCache::values() const { return along_paths(values_, paths_, batch_); }

}  // namespace xgrad::nn
