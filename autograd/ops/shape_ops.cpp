// Shape ops: every one is a copy between two strided layouts of the same values (or a reshape of
// the contiguous data), and its backward is the reverse copy. One strided-copy kernel serves them
// all (kernels/strided_copy): permute gathers with permuted strides, slice with a scaled stride,
// expand with zero strides, cat scatters into offsets of its output, and the slice backward
// scatter-adds into a zero gradient.
#include <xgrad/autograd/ops/shape_ops.hpp>

#include <algorithm>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include <xgrad/autograd/broadcast.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/kernels/strided_copy.hpp>

namespace xgrad {

namespace {

using kernels::contiguous_strides;
using kernels::copy_strided;
using kernels::Strides;
using kernels::Write;

// --- helpers shared by the ops -------------------------------------------------------------------

const Tensor& checked_input(const char* op, const Tensor& x) {
  if (!x.defined()) throw Error(fmt::format("{}: the input tensor is undefined", op));
  return x;
}

std::string sizes_str(const std::vector<std::int64_t>& sizes) { return fmt::format("[{}]", fmt::join(sizes, ",")); }

/// An axis of an op that, as PyTorch, accepts axis 0 or -1 on a 0-dim tensor (treated as rank 1).
std::size_t wrap_axis(const char* op, std::int64_t axis, std::size_t rank) {
  return normalize_axis(op, axis, std::max<std::size_t>(rank, 1));
}

/// `shape` with its -1 inferred so that it holds `numel` elements.
Shape inferred_shape(const char* op, const Shape& input, const std::vector<std::int64_t>& shape) {
  const std::size_t numel = numel_of(input);
  std::size_t known = 1;
  std::size_t inferred = shape.size();
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred != shape.size()) {
        throw Error(fmt::format("{}: shape {} has more than one -1; only one dimension can be inferred", op,
                                sizes_str(shape)));
      }
      inferred = i;
    } else if (shape[i] < 0) {
      throw Error(fmt::format("{}: shape {} has size {} at dimension {}; expected sizes >= 0, or -1 to infer one",
                              op, sizes_str(shape), shape[i], i));
    } else if (__builtin_mul_overflow(known, static_cast<std::size_t>(shape[i]), &known)) {
      throw Error(fmt::format("{}: shape {} is invalid for input of shape {} ({} elements)", op, sizes_str(shape),
                              shape_str(input), numel));
    }
  }
  Shape out(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) out[i] = shape[i] < 0 ? 0 : static_cast<std::size_t>(shape[i]);
  if (inferred != shape.size()) {
    if (known == 0 && numel == 0) {
      throw Error(fmt::format("{}: cannot infer the -1 of shape {} for input shape {} ({} elements): the other "
                              "sizes hold no element, so -1 could be any value",
                              op, sizes_str(shape), shape_str(input), numel));
    }
    if (known != 0 && numel % known == 0) {
      out[inferred] = numel / known;
      return out;
    }
  } else if (known == numel) {
    return out;
  }
  throw Error(fmt::format("{}: shape {} is invalid for input of shape {} ({} elements)", op, sizes_str(shape),
                          shape_str(input), numel));
}

/// The same contiguous values under another shape of the same size; the gradient is reshaped back.
Tensor reshaped(const char* op, const Tensor& x, const Shape& shape) {
  Array y = x.value();
  y.reshape(shape);
  Shape x_shape = x.shape();
  return record(op, std::move(y), {x}, [x_shape](BackwardContext& ctx) {
    Array g = ctx.take_grad_output();
    g.reshape(x_shape);
    ctx.accumulate(0, std::move(g));
  });
}

/// y[i_0, ..., i_n] = x[i_perm[0], ...]: output axis d is input axis perm[d].
Array permuted_array(const Array& x, const std::vector<std::size_t>& perm) {
  const Shape x_shape = shape_of(x);
  const Strides x_strides = contiguous_strides(x_shape);
  Shape shape(perm.size());
  Strides strides(perm.size());
  for (std::size_t d = 0; d < perm.size(); ++d) {
    shape[d] = x_shape[perm[d]];
    strides[d] = x_strides[perm[d]];
  }
  Array y = Array::from_shape(shape);
  copy_strided(x.data(), strides, y.data(), contiguous_strides(shape), shape, Write::assign);
  return y;
}

/// Axes permuted; the gradient goes back through the inverse permutation.
Tensor permuted(const char* op, const Tensor& x, const std::vector<std::size_t>& perm) {
  std::vector<std::size_t> inverse(perm.size());
  for (std::size_t d = 0; d < perm.size(); ++d) inverse[perm[d]] = d;
  return record(op, permuted_array(x.value(), perm), {x}, [inverse](BackwardContext& ctx) {
    ctx.accumulate(0, permuted_array(ctx.grad_output(), inverse));
  });
}

/// Where x[..., start : start + step * length : step, ...] (along `axis`) lies in a contiguous
/// array of `shape`: its shape, strides and offset.
struct AxisRange {
  Shape shape;
  Strides strides;
  std::ptrdiff_t offset;
};

AxisRange axis_range(const Shape& shape, std::size_t axis, std::size_t start, std::size_t length, std::size_t step) {
  AxisRange range{shape, contiguous_strides(shape), 0};
  range.offset = static_cast<std::ptrdiff_t>(start) * range.strides[axis];
  range.shape[axis] = length;
  range.strides[axis] *= static_cast<std::ptrdiff_t>(step);
  return range;
}

/// y = x[start : start + step * length : step] along `axis`; dx is zero but for the slice, where
/// dy is added (so several slices of one tensor accumulate).
Tensor sliced(const char* op, const Tensor& x, std::size_t axis, std::size_t start, std::size_t length,
              std::size_t step) {
  const AxisRange range = axis_range(x.shape(), axis, start, length, step);
  Array y = Array::from_shape(range.shape);
  copy_strided(x.value().data() + range.offset, range.strides, y.data(), contiguous_strides(range.shape),
               range.shape, Write::assign);
  return record(op, std::move(y), {x}, [range](BackwardContext& ctx) {
    if (!ctx.needs_grad(0)) return;
    Array& g = ctx.grad_buffer(0);
    copy_strided(ctx.grad_output().data(), contiguous_strides(range.shape), g.data() + range.offset, range.strides,
                 range.shape, Write::add);
  });
}

std::size_t rank_checked_axis(const char* op, const Tensor& x, std::int64_t axis) {
  if (x.dim() == 0) {
    throw Error(fmt::format("{}: expected a tensor of at least one dimension, got a 0-dim tensor (shape [])", op));
  }
  return normalize_axis(op, axis, x.dim());
}

/// Pieces of the given sizes along `axis`, each its own record so their gradients add up in x.
std::vector<Tensor> split_pieces(const char* op, const Tensor& x, const std::vector<std::size_t>& sizes,
                                 std::size_t axis) {
  std::vector<Tensor> pieces;
  pieces.reserve(sizes.size());
  std::size_t start = 0;
  for (std::size_t size : sizes) {
    pieces.push_back(sliced(op, x, axis, start, size, 1));
    start += size;
  }
  return pieces;
}

/// The shape `x_shape` broadcasts to under expand's sizes (-1 keeps a dimension).
Shape expanded_shape(const char* op, const Shape& x_shape, const std::vector<std::int64_t>& sizes) {
  if (sizes.size() < x_shape.size()) {
    throw Error(fmt::format("{}: cannot expand shape {} to {}: the target has fewer dimensions than the tensor",
                            op, shape_str(x_shape), sizes_str(sizes)));
  }
  const std::size_t leading = sizes.size() - x_shape.size();
  Shape out(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const std::int64_t s = sizes[i];
    if (s < -1 || (s == -1 && i < leading)) {
      throw Error(fmt::format("{}: cannot expand shape {} to {}: size {} at dimension {} (expected >= 0{})", op,
                              shape_str(x_shape), sizes_str(sizes), s, i,
                              i < leading ? ", as it is a new leading dimension" : ", or -1 to keep the size"));
    }
    if (i < leading) {
      out[i] = static_cast<std::size_t>(s);
      continue;
    }
    const std::size_t d = x_shape[i - leading];
    if (s == -1 || static_cast<std::size_t>(s) == d) {
      out[i] = d;
    } else if (d == 1) {
      out[i] = static_cast<std::size_t>(s);
    } else {
      throw Error(fmt::format("{}: cannot expand shape {} to {}: the target size {} must match the existing size "
                              "{} at non-singleton dimension {}",
                              op, shape_str(x_shape), sizes_str(sizes), s, d, i));
    }
  }
  std::size_t numel = 1;
  for (std::size_t d : out) {
    if (__builtin_mul_overflow(numel, d, &numel)) {
      throw Error(fmt::format("{}: cannot expand shape {} to {}: the result would hold more elements than memory "
                              "can address",
                              op, shape_str(x_shape), sizes_str(sizes)));
    }
  }
  return out;
}

/// x broadcast to `shape` (a copy in which stretched axes repeat); dx = dy summed back to x's shape.
Tensor broadcast(const char* op, const Tensor& x, const Shape& shape) {
  const Shape x_shape = x.shape();
  if (shape == x_shape) return x;
  const std::size_t leading = shape.size() - x_shape.size();
  const Strides x_strides = contiguous_strides(x_shape);
  Strides strides(shape.size(), 0);  // a stretched or new axis re-reads the same elements
  for (std::size_t i = leading; i < shape.size(); ++i) {
    if (x_shape[i - leading] != 1) strides[i] = x_strides[i - leading];
  }
  Array y = Array::from_shape(shape);
  copy_strided(x.value().data(), strides, y.data(), contiguous_strides(shape), shape, Write::assign);
  return record(op, std::move(y), {x}, [x_shape](BackwardContext& ctx) {
    ctx.accumulate(0, sum_to_shape(ctx.grad_output(), x_shape));
  });
}

}  // namespace

// --- reshape family ------------------------------------------------------------------------------

Tensor reshape(const Tensor& x, const std::vector<std::int64_t>& shape) {
  checked_input("reshape", x);
  return reshaped("reshape", x, inferred_shape("reshape", x.shape(), shape));
}

Tensor view(const Tensor& x, const std::vector<std::int64_t>& shape) {
  checked_input("view", x);
  return reshaped("view", x, inferred_shape("view", x.shape(), shape));
}

Tensor flatten(const Tensor& x, std::int64_t start_axis, std::int64_t end_axis) {
  checked_input("flatten", x);
  const Shape shape = x.shape();
  const std::size_t start = wrap_axis("flatten", start_axis, shape.size());
  const std::size_t end = wrap_axis("flatten", end_axis, shape.size());
  if (start > end) {
    throw Error(fmt::format("flatten: start axis {} comes after end axis {} for a tensor of shape {}", start_axis,
                            end_axis, shape_str(shape)));
  }
  if (shape.empty()) return reshaped("flatten", x, {1});
  if (start == end) return x;
  Shape out(shape.begin(), shape.begin() + static_cast<std::ptrdiff_t>(start));
  out.push_back(std::accumulate(shape.begin() + static_cast<std::ptrdiff_t>(start),
                                shape.begin() + static_cast<std::ptrdiff_t>(end) + 1, std::size_t{1},
                                std::multiplies<>()));
  out.insert(out.end(), shape.begin() + static_cast<std::ptrdiff_t>(end) + 1, shape.end());
  return reshaped("flatten", x, out);
}

Tensor unsqueeze(const Tensor& x, std::int64_t axis) {
  checked_input("unsqueeze", x);
  Shape shape = x.shape();
  const std::size_t a = normalize_axis("unsqueeze", axis, shape.size() + 1);
  shape.push_back(1);  // then moved to position a
  std::rotate(shape.begin() + static_cast<std::ptrdiff_t>(a), shape.end() - 1, shape.end());
  return reshaped("unsqueeze", x, shape);
}

Tensor squeeze(const Tensor& x) {
  checked_input("squeeze", x);
  const Shape shape = x.shape();
  Shape out;
  for (std::size_t d : shape) {
    if (d != 1) out.push_back(d);
  }
  if (out.size() == shape.size()) return x;
  return reshaped("squeeze", x, out);
}

Tensor squeeze(const Tensor& x, std::int64_t axis) {
  checked_input("squeeze", x);
  Shape shape = x.shape();
  const std::size_t a = wrap_axis("squeeze", axis, shape.size());
  if (shape.empty() || shape[a] != 1) return x;
  shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(a));
  return reshaped("squeeze", x, shape);
}

Tensor contiguous(const Tensor& x) { return checked_input("contiguous", x); }

// --- transpose, permute --------------------------------------------------------------------------

Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1) {
  checked_input("transpose", x);
  const std::size_t rank = x.dim();
  const std::size_t a = wrap_axis("transpose", axis0, rank);
  const std::size_t b = wrap_axis("transpose", axis1, rank);
  if (a == b) return x;
  std::vector<std::size_t> perm(rank);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  std::swap(perm[a], perm[b]);
  return permuted("transpose", x, perm);
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) {
  checked_input("permute", x);
  const std::size_t rank = x.dim();
  if (dims.size() != rank) {
    throw Error(fmt::format("permute: dims {} has {} entries for a tensor of shape {} (rank {}); expected a "
                            "permutation of its {} axes",
                            sizes_str(dims), dims.size(), shape_str(x.shape()), rank, rank));
  }
  std::vector<std::size_t> perm(rank);
  std::vector<bool> seen(rank, false);
  for (std::size_t d = 0; d < rank; ++d) {
    perm[d] = normalize_axis("permute", dims[d], rank);
    if (seen[perm[d]]) {
      throw Error(fmt::format("permute: dims {} names axis {} twice; expected a permutation of the axes of a "
                              "tensor of shape {}",
                              sizes_str(dims), perm[d], shape_str(x.shape())));
    }
    seen[perm[d]] = true;
  }
  bool identity = true;
  for (std::size_t d = 0; d < rank; ++d) identity = identity && perm[d] == d;
  if (identity) return x;
  return permuted("permute", x, perm);
}

// --- slice, narrow -------------------------------------------------------------------------------

Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step) {
  checked_input("slice", x);
  const std::size_t a = rank_checked_axis("slice", x, axis);
  if (step <= 0) {
    throw Error(fmt::format("slice: step must be positive, got {} (axis {} of shape {})", step, axis,
                            shape_str(x.shape())));
  }
  // Python's rule: negative bounds count from the end, then both are clamped to [0, size].
  const auto size = static_cast<std::int64_t>(x.shape()[a]);
  auto clamped = [size](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + size : i, 0, size); };
  const std::int64_t first = clamped(start);
  const std::int64_t last = std::max(clamped(end), first);
  const std::int64_t length = last == first ? 0 : (last - first - 1) / step + 1;
  if (first == 0 && length == size && (step == 1 || size <= 1)) return x;
  return sliced("slice", x, a, static_cast<std::size_t>(first), static_cast<std::size_t>(length),
                static_cast<std::size_t>(step));
}

Tensor narrow(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t length) {
  checked_input("narrow", x);
  const std::size_t a = rank_checked_axis("narrow", x, axis);
  const auto size = static_cast<std::int64_t>(x.shape()[a]);
  if (start < -size || start > size) {
    throw Error(fmt::format("narrow: start {} is out of range for axis {} of shape {} (expected {} to {})", start,
                            axis, shape_str(x.shape()), -size, size));
  }
  const std::int64_t first = start < 0 ? start + size : start;
  if (length < 0 || length > size - first) {
    throw Error(fmt::format("narrow: start {} + length {} exceeds the size {} of axis {} of shape {}", first, length,
                            size, axis, shape_str(x.shape())));
  }
  return sliced("narrow", x, a, static_cast<std::size_t>(first), static_cast<std::size_t>(length), 1);
}

// --- cat, split, chunk ---------------------------------------------------------------------------

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t axis) {
  if (tensors.empty()) throw Error("cat: expected a non-empty list of tensors");
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) throw Error(fmt::format("cat: tensor {} is undefined", i));
    if (tensors[i].dim() == 0) {
      throw Error(fmt::format("cat: tensor {} is 0-dim (shape []); only tensors of at least one dimension can be "
                              "concatenated",
                              i));
    }
  }
  const Shape first = tensors[0].shape();
  const std::size_t a = normalize_axis("cat", axis, first.size());
  std::vector<Shape> shapes;
  std::vector<std::size_t> offsets;  // where each input starts along the axis
  Shape out_shape = first;
  out_shape[a] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    Shape shape = tensors[i].shape();
    bool agrees = shape.size() == first.size();
    for (std::size_t d = 0; agrees && d < shape.size(); ++d) agrees = d == a || shape[d] == first[d];
    if (!agrees) {
      throw Error(fmt::format("cat: tensor {} has shape {} and tensor 0 has shape {}; expected the same rank and "
                              "the same sizes in every axis but axis {}",
                              i, shape_str(shape), shape_str(first), a));
    }
    offsets.push_back(out_shape[a]);
    out_shape[a] += shape[a];
    shapes.push_back(std::move(shape));
  }

  Array y = Array::from_shape(out_shape);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const AxisRange range = axis_range(out_shape, a, offsets[i], shapes[i][a], 1);
    copy_strided(tensors[i].value().data(), contiguous_strides(range.shape), y.data() + range.offset, range.strides,
                 range.shape, Write::assign);
  }
  return record("cat", std::move(y), tensors, [out_shape, a, shapes, offsets](BackwardContext& ctx) {
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      if (!ctx.needs_grad(i)) continue;
      const AxisRange range = axis_range(out_shape, a, offsets[i], shapes[i][a], 1);
      Array g = Array::from_shape(range.shape);
      copy_strided(ctx.grad_output().data() + range.offset, range.strides, g.data(), contiguous_strides(range.shape),
                   range.shape, Write::assign);
      ctx.accumulate(i, std::move(g));
    }
  });
}

std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t axis) {
  checked_input("split", x);
  const std::size_t a = rank_checked_axis("split", x, axis);
  const std::size_t size = x.shape()[a];
  if (split_size < 0 || (split_size == 0 && size > 0)) {
    throw Error(fmt::format("split: split_size {} is invalid for axis {} of shape {} (expected > 0, or 0 for an "
                            "axis of size 0)",
                            split_size, axis, shape_str(x.shape())));
  }
  const auto piece = static_cast<std::size_t>(split_size);
  std::vector<std::size_t> sizes;
  for (std::size_t start = 0; start < size; start += piece) sizes.push_back(std::min(piece, size - start));
  if (sizes.empty()) sizes.push_back(0);
  return split_pieces("split", x, sizes, a);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t axis) {
  checked_input("split", x);
  const std::size_t a = rank_checked_axis("split", x, axis);
  const std::size_t size = x.shape()[a];
  std::vector<std::size_t> pieces;
  std::int64_t total = 0;
  for (std::int64_t s : sizes) {
    if (s < 0) {
      throw Error(fmt::format("split: sizes {} has the negative size {}; expected sizes >= 0", sizes_str(sizes), s));
    }
    if (__builtin_add_overflow(total, s, &total)) total = std::numeric_limits<std::int64_t>::max();
    pieces.push_back(static_cast<std::size_t>(s));
  }
  if (total != static_cast<std::int64_t>(size)) {
    throw Error(fmt::format("split: sizes {} add up to {}, expected the size {} of axis {} of shape {}",
                            sizes_str(sizes), total, size, axis, shape_str(x.shape())));
  }
  return split_pieces("split", x, pieces, a);
}

std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t axis) {
  checked_input("chunk", x);
  if (chunks <= 0) {
    throw Error(fmt::format("chunk: expected chunks > 0, got {} (shape {})", chunks, shape_str(x.shape())));
  }
  const std::size_t a = rank_checked_axis("chunk", x, axis);
  const std::size_t size = x.shape()[a];
  const std::size_t piece = size == 0 ? 0 : (size - 1) / static_cast<std::size_t>(chunks) + 1;  // ceil
  std::vector<std::size_t> sizes;
  if (size == 0) sizes.assign(static_cast<std::size_t>(chunks), 0);  // as PyTorch: `chunks` empty pieces
  for (std::size_t start = 0; start < size; start += piece) sizes.push_back(std::min(piece, size - start));
  return split_pieces("chunk", x, sizes, a);
}

// --- expand, broadcast_to ------------------------------------------------------------------------

Tensor expand(const Tensor& x, const std::vector<std::int64_t>& shape) {
  checked_input("expand", x);
  return broadcast("expand", x, expanded_shape("expand", x.shape(), shape));
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  checked_input("broadcast_to", x);
  std::vector<std::int64_t> sizes(shape.begin(), shape.end());
  return broadcast("broadcast_to", x, expanded_shape("broadcast_to", x.shape(), sizes));
}

}  // namespace xgrad
