#include <xgrad/nn/kv_cache.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::nn {

namespace {

constexpr std::size_t kMinCapacity = 16;

/// buffer (B, capacity, D) with room for `needed` positions, the first `length` kept.
void reserve(Tensor& buffer, std::size_t batch, std::size_t width, std::size_t length, std::size_t needed) {
  const std::size_t capacity = buffer.defined() ? buffer.shape()[1] : 0;
  if (needed <= capacity) return;
  const std::size_t grown = std::max({needed, 2 * capacity, kMinCapacity});
  Array bigger = Array::from_shape({batch, grown, width});  // (B, grown, D)
  for (std::size_t b = 0; b < batch && length > 0; ++b) {
    std::copy_n(buffer.value().data() + b * capacity * width, length * width, bigger.data() + b * grown * width);
  }
  buffer = Tensor(std::move(bigger));
}

/// Rows [at, at + T) of buffer (B, capacity, D) from x (B, T, D).
void write(Tensor& buffer, const Tensor& x, std::size_t at) {
  const std::size_t batch = x.shape()[0], t = x.shape()[1], width = x.shape()[2], capacity = buffer.shape()[1];
  const float* from = x.value().data();
  float* to = buffer.mutable_value().data();
  for (std::size_t b = 0; b < batch; ++b) std::copy_n(from + b * t * width, t * width, to + (b * capacity + at) * width);
}

}  // namespace

void KVCache::append(const Tensor& k, const Tensor& v) {
  const Shape ks = k.shape(), vs = v.shape();
  if (ks.size() != 3 || vs.size() != 3 || ks[0] != vs[0] || ks[1] != vs[1]) {
    throw Error(fmt::format("KVCache::append: keys {} and values {} must be (B, T, D) and (B, T, Dv)", shape_str(ks),
                            shape_str(vs)));
  }
  if (keys_.defined() && (ks[0] != batch() || ks[2] != keys_.shape()[2] || vs[2] != values_.shape()[2])) {
    throw Error(fmt::format("KVCache::append: keys {} and values {} do not match the cache's batch {} and widths {} "
                            "and {}",
                            shape_str(ks), shape_str(vs), batch(), keys_.shape()[2], values_.shape()[2]));
  }
  const std::size_t needed = length_ + ks[1];
  reserve(keys_, ks[0], ks[2], length_, needed);
  reserve(values_, vs[0], vs[2], length_, needed);
  write(keys_, k, length_);
  write(values_, v, length_);
  length_ = needed;
}

void KVCache::select_rows(const std::vector<std::size_t>& rows) {
  if (!keys_.defined()) return;
  for (Tensor* buffer : {&keys_, &values_}) {
    const std::size_t batch = buffer->shape()[0], row = buffer->numel() / batch;
    Array selected = Array::from_shape({rows.size(), buffer->shape()[1], buffer->shape()[2]});
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i] >= batch) {
        throw Error(fmt::format("KVCache::select_rows: row {} of a batch of {}", rows[i], batch));
      }
      std::copy_n(buffer->value().data() + rows[i] * row, row, selected.data() + i * row);
    }
    *buffer = Tensor(std::move(selected));
  }
}

}  // namespace xgrad::nn
