// xgrad::Tensor: a float32 array of any rank, held in an xtensor container, plus what reverse-mode
// differentiation needs (requires_grad, the record that made it, the gradient of a leaf).
// Copying a Tensor copies a handle: both copies see the same value and gradient, as in PyTorch.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/array.hpp>
#include <xgrad/core/generator.hpp>
#include <xgrad/core/shape.hpp>

namespace xgrad {

struct Node;
class Tensor;

/// Called with a leaf once a backward has finished accumulating its gradient (see
/// Tensor::register_post_accumulate_grad_hook).
using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;

/// What a Tensor handle points at. Value and gradient are held through shared pointers so that
/// a backward closure can keep a value alive (`Tensor::saved()`) without keeping the Tensor.
struct TensorImpl {
  std::shared_ptr<Array> data;
  std::shared_ptr<Array> grad;  // a leaf's accumulated gradient; null until a backward reaches it
  bool requires_grad = false;   // set by the user on leaves; an op's output requires grad iff it has a grad_fn
  std::shared_ptr<Node> grad_fn;  // the tape record that produced this tensor; null for leaves
  /// How many times the value was handed out for modification (mutable_value), shared by the
  /// tensors that share the value (detach()). A record notes it for each input and its output;
  /// backward refuses a record whose values changed since, as PyTorch's version counter.
  std::shared_ptr<std::uint64_t> version = std::make_shared<std::uint64_t>(0);
  /// Hooks run when a backward has accumulated this leaf's gradient, by registration id.
  std::vector<std::pair<std::uint64_t, PostAccumulateGradHook>> post_accumulate_grad_hooks;
};

class Tensor {
 public:
  /// An undefined tensor (like a default-constructed torch::Tensor): a "none" for optional arguments.
  Tensor() = default;
  explicit Tensor(Array value, bool requires_grad = false);
  /// Wraps an existing value and (for op outputs) the record that produced it.
  Tensor(std::shared_ptr<Array> data, std::shared_ptr<Node> grad_fn);

  bool defined() const { return impl_ != nullptr; }

  // --- value -------------------------------------------------------------------------------
  const Array& value() const;
  /// The value for in-place updates outside the tape (optimizers, initialisers). A Tensor is a
  /// handle, so this is available on a const handle, as torch::Tensor's data. Each call counts as
  /// a modification: a backward through a record that used this value before then throws.
  Array& mutable_value() const;
  /// The count of mutable_value() calls on this value (shared with detached copies).
  std::uint64_t version() const;
  /// A shared reference to the value, for a backward closure that needs it later.
  std::shared_ptr<const Array> saved() const;
  Shape shape() const;
  std::size_t dim() const;
  /// Size of one axis (negative axes count from the end).
  std::size_t size(std::int64_t axis) const;
  std::size_t numel() const;
  /// The single value of a one-element tensor.
  float item() const;

  // --- autograd ----------------------------------------------------------------------------
  bool requires_grad() const;
  /// Marks a leaf as a variable whose gradient backward() accumulates. Returns *this to chain:
  /// `auto w = xgrad::randn({3, 4}).set_requires_grad(true);`
  Tensor& set_requires_grad(bool requires_grad = true);
  /// A tensor that no op produced (a user's input or parameter).
  bool is_leaf() const;
  /// The accumulated gradient of a leaf; undefined before any backward reached it.
  Tensor grad() const;
  /// Drops the accumulated gradient (PyTorch's zero_grad(set_to_none=true)).
  void zero_grad() const;
  /// The same value (shared, not copied) cut from the tape.
  Tensor detach() const;
  /// Back-propagates from this tensor: `gradient` is d(loss)/d(this), required unless this is a
  /// single-element tensor. The graph is released afterwards unless `retain_graph`.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  const std::shared_ptr<Node>& grad_fn() const;
  /// Runs `hook(leaf)` each time a backward has finished accumulating this leaf's gradient: after
  /// the last record that contributes to it, or at the end of the backward for a leaf that got
  /// no contribution (its grad may then be undefined). As PyTorch's
  /// register_post_accumulate_grad_hook: what data-parallel training starts communicating on.
  /// Returns an id for remove_post_accumulate_grad_hook. Leaves only.
  std::uint64_t register_post_accumulate_grad_hook(PostAccumulateGradHook hook) const;
  void remove_post_accumulate_grad_hook(std::uint64_t id) const;

  TensorImpl* impl() const { return impl_.get(); }
  /// A handle on an existing tensor (what hooks and the tape use).
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  std::string to_string() const;

 private:
  const TensorImpl& checked(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

// --- factories (each returns a leaf that does not require grad) --------------------------------
Tensor from_vector(const std::vector<float>& values, const Shape& shape);
Tensor scalar_tensor(float value);
Tensor zeros(const Shape& shape);
Tensor ones(const Shape& shape);
Tensor full(const Shape& shape, float value);
Tensor zeros_like(const Tensor& other);
Tensor ones_like(const Tensor& other);
/// [start, start + step, ...) up to end (exclusive), as torch.arange.
Tensor arange(float start, float end, float step = 1.f);
Tensor arange(float end);
/// Standard normal samples.
Tensor randn(const Shape& shape, Generator& generator = default_generator());
/// Uniform samples in [0, 1).
Tensor rand(const Shape& shape, Generator& generator = default_generator());
/// Uniform samples in [low, high).
Tensor uniform(const Shape& shape, float low, float high, Generator& generator = default_generator());
/// Normal samples with the given mean and standard deviation.
Tensor normal(const Shape& shape, float mean, float std, Generator& generator = default_generator());

}  // namespace xgrad
