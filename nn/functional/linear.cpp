// linear: y = act(x W^T + b) as one GEMM (for the few rows of a decoding step, one pass over W in
// place) and, with a ReLU, one pass after it; its backward as two more GEMMs and a column sum;
// linear_rows does the same with a block of W's rows, read in place.
#include <xgrad/nn/functional.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>
#include <xgrad/autograd/ops/elementwise.hpp>
#include <xgrad/core/precision.hpp>
#include <xgrad/kernels/elementwise.hpp>
#include <xgrad/kernels/gemm.hpp>
#include <xgrad/kernels/linear.hpp>
#include <xgrad/kernels/packed_linear.hpp>

namespace xgrad::nn::functional {

namespace {

/// Copies of blocks of weights made for the products, kept between calls: a block is made again
/// only when its weight's value changed (its version or storage) or its rows did; clear() drops
/// them all. `Element` is the copy's type, `make(w, out, in)` makes the copy of out rows at w (a
/// Buffer: from the caching allocator, so that a copy made again, or by the next decode, reuses
/// memory where a fresh one from the system would be faulted in page by page).
template <class Element>
class WeightCopies {
 public:
  using Buffer = std::vector<Element, CachingAllocator<Element>>;
  using Copy = std::shared_ptr<const Buffer>;

  template <class Make>
  Copy rows(const Tensor& weight, std::size_t start, std::size_t out, Make make) {
    const std::size_t in = weight.size(1);
    const float* data = weight.value().data();
    const std::uint64_t version = weight.version();
    const std::lock_guard<std::mutex> lock(mutex_);
    Entry& entry = entries_[{weight.impl(), start}];
    if (entry.copy && entry.owner.lock() == weight.impl_ptr() && entry.version == version && entry.data == data &&
        entry.out == out) {
      return entry.copy;
    }
    Copy copy = make(data + start * in, out, in);
    entry = Entry{weight.impl_ptr(), version, data, out, copy};
    return copy;
  }

  void clear() {
    const std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
  }

  /// Drops the copies of weights freed since.
  void drop_freed() {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.owner.expired() ? entries_.erase(it) : std::next(it);
    }
  }

 private:
  struct Entry {
    std::weak_ptr<TensorImpl> owner;  // a weight freed since cannot match a new one at its address
    std::uint64_t version = 0;
    const float* data = nullptr;
    std::size_t out = 0;
    Copy copy;
  };
  std::mutex mutex_;
  std::map<std::pair<const TensorImpl*, std::size_t>, Entry> entries_;
};

/// W's rows [start, start + out), dense, as bf16 bits: what bf16 autocast's products take on a CPU
/// with bf16 instructions.
using Bf16Rows = WeightCopies<std::uint16_t>::Copy;

/// Such bf16 copies, as torch.autocast's weight cache: dropped when the outermost autocast scope
/// ends. The decoding steps convert each weight once; a training step converts it once for its
/// forward and backward.
WeightCopies<std::uint16_t>& bf16_copies() {
  static auto* copies = [] {  // never destroyed: nothing to free after main
    on_autocast_exit([] { bf16_copies().clear(); });
    return new WeightCopies<std::uint16_t>;
  }();
  return *copies;
}

Bf16Rows bf16_rows(const Tensor& weight, std::size_t start, std::size_t out) {
  return bf16_copies().rows(weight, start, out, [](const float* w, std::size_t rows, std::size_t in) {
    auto bits = std::make_shared<WeightCopies<std::uint16_t>::Buffer>(rows * in);
    kernels::to_bf16(w, rows, in, in, bits->data());
    return bits;
  });
}

/// W's rows [start, start + out) packed for few-row products (kernels::pack_weight).
using PackedRows = WeightCopies<float>::Copy;

/// Such packed copies, made while a PackedWeightsGuard lives and kept while their weight lives
/// unchanged, so that the next decode finds them made (packing a weight costs 1-15 of its products,
/// bench_gemm --skinny); those of weights freed since are dropped when the outermost guard ends.
class PackedWeights {
 public:
  static PackedWeights& instance() {
    static auto* weights = new PackedWeights;  // never destroyed: nothing to free after main
    return *weights;
  }

  bool active() const { return guards_.load(std::memory_order_relaxed) > 0; }
  void enter() { guards_.fetch_add(1); }
  void leave() {
    if (guards_.fetch_sub(1) == 1) copies_.drop_freed();
  }
  void release() { copies_.clear(); }

  PackedRows rows(const Tensor& weight, std::size_t start, std::size_t out) {
    return copies_.rows(weight, start, out, [](const float* w, std::size_t rows, std::size_t in) {
      auto packed = std::make_shared<WeightCopies<float>::Buffer>(kernels::packed_weight_size(rows, in));
      kernels::pack_weight(w, rows, in, packed->data());
      return packed;
    });
  }

 private:
  std::atomic<int> guards_{0};
  WeightCopies<float> copies_;
};

/// y = act(x W[start : start + out]^T + b[start : start + out]): x (M, in), weight (W_rows, in),
/// bias (W_rows) or undefined. One kernel for linear (the whole W) and linear_rows (a block), with
/// the ReLU, if any, fused into the bias pass after the GEMM and into the backward's first step.
Tensor linear_kernel(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, std::size_t start,
                     std::size_t out, bool relu) {
  const Shape x_shape = x.shape();
  const std::size_t in = weight.size(1);
  const std::size_t rows = numel_of(x_shape) / in;  // M: every leading axis folded into one
  const bool whole = start == 0 && out == weight.size(0);

  Shape y_shape = x_shape;
  y_shape.back() = out;
  auto y = std::make_shared<Array>(Array::from_shape(y_shape));  // (M, out)
  const float* w = weight.value().data() + start * in;            // (out, in), rows of W
  const float* b = bias.defined() ? bias.value().data() + start : nullptr;
  // Without a ReLU, every row starts at b and the product accumulates on top (no pass after it);
  // with one, the product comes first and one pass adds b and clamps.
  const bool bias_first = b && !relu;
  if (bias_first) kernels::bias_rows(b, rows, out, y->data());
  // Under bf16 autocast on a CPU with bf16 products, W's bf16 copy (kept between calls).
  const Bf16Rows w_bf16 = autocast_precision() == Precision::bf16 && kernels::bf16_gemm_native() && out > 0 && in > 0
                              ? bf16_rows(weight, start, out)
                              : nullptr;
  // Under a PackedWeightsGuard, kPackedMinRows to kPackedRows rows in fp32: W's packed copy, kept
  // while W lives unchanged.
  const bool fp32 = autocast_precision() == Precision::fp32;
  const PackedRows w_packed = fp32 && rows >= kPackedMinRows && rows <= kPackedRows && out > 0 && in > 0 &&
                                      PackedWeights::instance().active()
                                  ? PackedWeights::instance().rows(weight, start, out)
                                  : nullptr;
  // Decoding steps: GEMM would first pack all of W. Under bf16 autocast, the bf16 kernel on W's
  // bf16 copy where the CPU has bf16 products; elsewhere the GEMM, which rounds its inputs.
  const bool skinny = rows <= kernels::kSkinnyRows && out > 0 && (fp32 || w_bf16);
  if ((w_packed || skinny) && !bias_first) std::fill(y->data(), y->data() + rows * out, 0.f);  // they add to y
  if (w_packed) {
    kernels::packed_linear(x.value().data(), rows, in, w_packed->data(), out, y->data());
  } else if (skinny) {
    if (w_bf16) kernels::skinny_linear_bf16(x.value().data(), rows, in, w_bf16->data(), out, y->data());
    else kernels::skinny_linear(x.value().data(), rows, in, w, out, y->data());
  } else if (w_bf16 && rows > 0) {
    kernels::gemm_bf16(false, true, rows, out, in, 1.f, x.value().data(), in, w_bf16->data(), bias_first ? 1.f : 0.f,
                       y->data(), out);
  } else if (rows > 0 && out > 0) {
    kernels::gemm(false, true, rows, out, in, 1.f, x.value().data(), w, bias_first ? 1.f : 0.f, y->data());
  }
  if (relu) kernels::bias_relu(b, rows, out, y->data());

  auto x_saved = x.saved(), w_saved = weight.saved();
  std::shared_ptr<const Array> y_saved = relu ? y : nullptr;  // the ReLU's mask: y > 0
  const auto backward = [x_saved, w_saved, w_bf16, y_saved, rows, in, out, start, whole](BackwardContext& ctx) {
    const float* dy = ctx.grad_output().data();  // (M, out)
    Array dz;  // (M, out) through the ReLU: dy where y > 0
    if (y_saved) {
      dz = Array::from_shape(y_saved->shape());
      kernels::relu_backward(y_saved->data(), dy, dz.data(), rows * out);
      dy = dz.data();
    }
    if (ctx.needs_grad(0)) {  // dx (M, in) += dy (M, out) W (out, in)
      float beta = 0.f;
      Array& dx = ctx.grad_target(0, beta);
      if (rows > 0) {
        if (w_bf16 && autocast_precision() == Precision::bf16) {  // the forward's bf16 W, unchanged since
          kernels::gemm_bf16(false, false, rows, in, out, 1.f, dy, out, w_bf16->data(), beta, dx.data(), in);
        } else if (out > 0) {
          kernels::gemm(false, false, rows, in, out, 1.f, dy, w_saved->data() + start * in, beta, dx.data());
        } else if (beta == 0.f) {
          dx.fill(0.f);
        }
      }
    }
    if (ctx.needs_grad(1)) {  // dW (out, in) += dy^T (out, M) x (M, in), into W's block of rows
      float beta = 1.f;
      Array& dw = whole ? ctx.grad_target(1, beta) : ctx.grad_buffer(1);
      if (rows > 0 && out > 0) {
        kernels::gemm(true, false, out, in, rows, 1.f, dy, x_saved->data(), beta, dw.data() + start * in);
      } else if (beta == 0.f) {
        dw.fill(0.f);
      }
    }
    if (ctx.needs_grad(2)) kernels::column_sums(dy, rows, out, ctx.grad_buffer(2).data() + start);  // db += sum of dy's rows
  };
  return bias.defined() ? record(op, y, {x, weight, bias}, backward) : record(op, y, {x, weight}, backward);
}

void check_input(const char* op, const Tensor& x, const Tensor& weight) {
  if (!x.defined() || !weight.defined()) throw Error(fmt::format("{}: input and weight must be defined", op));
  const Shape x_shape = x.shape(), w_shape = weight.shape();
  if (w_shape.size() != 2) {
    throw Error(fmt::format("{}: weight must be 2-D (out_features, in_features), got {}", op, shape_str(w_shape)));
  }
  if (x_shape.empty() || x_shape.back() != w_shape[1]) {
    throw Error(fmt::format("{}: input {} does not end in in_features {} of weight {}", op, shape_str(x_shape),
                            w_shape[1], shape_str(w_shape)));
  }
}

}  // namespace

PackedWeightsGuard::PackedWeightsGuard() { PackedWeights::instance().enter(); }
PackedWeightsGuard::~PackedWeightsGuard() { PackedWeights::instance().leave(); }
void release_packed_weights() { PackedWeights::instance().release(); }

Activation activation_from_name(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "gelu") return Activation::gelu;
  throw Error(fmt::format("activation must be \"relu\" or \"gelu\", got \"{}\"", name));
}

const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
    case Activation::none: break;
  }
  return "none";
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation) {
  const char* op = activation == Activation::relu ? "linear_relu" : "linear";
  check_input(op, x, weight);
  const std::size_t out = weight.size(0);
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != out)) {
    throw Error(fmt::format("{}: bias must have shape [{}], got {}", op, out, shape_str(bias.shape())));
  }
  Tensor y = linear_kernel(op, x, weight, bias, 0, out, activation == Activation::relu);
  return activation == Activation::gelu ? gelu(y) : y;
}

Tensor linear_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, std::size_t start, std::size_t count) {
  check_input("linear_rows", x, weight);
  const std::size_t rows = weight.size(0);
  if (start > rows || count > rows - start) {
    throw Error(fmt::format("linear_rows: rows [{}, {}) are outside the weight's {} rows (weight {})", start,
                            start + count, rows, shape_str(weight.shape())));
  }
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != rows)) {
    throw Error(fmt::format("linear_rows: bias must have shape [{}] (the weight's rows), got {}", rows,
                            shape_str(bias.shape())));
  }
  return linear_kernel("linear_rows", x, weight, bias, start, count, false);
}

}  // namespace xgrad::nn::functional
