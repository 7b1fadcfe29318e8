#include <xgrad/autograd/tensor.hpp>

#include <cmath>
#include <ostream>
#include <sstream>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/tape.hpp>

namespace xgrad {

Tensor::Tensor(Array value, bool requires_grad) : impl_(std::make_shared<TensorImpl>()) {
  impl_->data = std::make_shared<Array>(std::move(value));
  impl_->requires_grad = requires_grad;
}

Tensor::Tensor(std::shared_ptr<Array> data, std::shared_ptr<Node> grad_fn) : impl_(std::make_shared<TensorImpl>()) {
  impl_->data = std::move(data);
  impl_->grad_fn = std::move(grad_fn);
}

const TensorImpl& Tensor::checked(const char* what) const {
  if (!impl_) throw Error(fmt::format("Tensor::{}: the tensor is undefined (default-constructed)", what));
  return *impl_;
}

const Array& Tensor::value() const { return *checked("value").data; }
Array& Tensor::mutable_value() const {
  const TensorImpl& impl = checked("mutable_value");
  ++*impl.version;
  return *impl.data;
}

std::uint64_t Tensor::version() const { return *checked("version").version; }
std::shared_ptr<const Array> Tensor::saved() const { return checked("saved").data; }
Shape Tensor::shape() const { return shape_of(*checked("shape").data); }
std::size_t Tensor::dim() const { return checked("dim").data->dimension(); }
std::size_t Tensor::numel() const { return checked("numel").data->size(); }

std::size_t Tensor::size(std::int64_t axis) const {
  const Array& v = *checked("size").data;
  return v.shape()[normalize_axis("Tensor::size", axis, v.dimension())];
}

float Tensor::item() const {
  const Array& v = *checked("item").data;
  if (v.size() != 1) {
    throw Error(fmt::format("Tensor::item: expected a tensor with one element, got shape {} ({} elements)",
                            shape_str(shape_of(v)), v.size()));
  }
  return *v.data();
}

bool Tensor::requires_grad() const {
  const TensorImpl& impl = checked("requires_grad");
  return impl.requires_grad || impl.grad_fn != nullptr;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  TensorImpl& impl = const_cast<TensorImpl&>(checked("set_requires_grad"));
  if (impl.grad_fn) {
    throw Error(fmt::format(
        "Tensor::set_requires_grad: only leaves can be marked; this tensor is the output of '{}' "
        "(use detach() for a new leaf)",
        impl.grad_fn->name));
  }
  impl.requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const { return checked("is_leaf").grad_fn == nullptr; }

Tensor Tensor::grad() const {
  const TensorImpl& impl = checked("grad");
  if (!impl.grad) return Tensor();
  return Tensor(impl.grad, nullptr);
}

void Tensor::zero_grad() const { const_cast<TensorImpl&>(checked("zero_grad")).grad.reset(); }

std::uint64_t Tensor::register_post_accumulate_grad_hook(PostAccumulateGradHook hook) const {
  TensorImpl& impl = const_cast<TensorImpl&>(checked("register_post_accumulate_grad_hook"));
  if (impl.grad_fn) {
    throw Error(fmt::format("register_post_accumulate_grad_hook: the tensor of shape {} is the output of '{}', not "
                            "a leaf: only leaves accumulate gradients",
                            shape_str(shape()), detail::node_name(*impl.grad_fn)));
  }
  static std::uint64_t next_id = 0;
  const std::uint64_t id = ++next_id;
  impl.post_accumulate_grad_hooks.emplace_back(id, std::move(hook));
  ++detail::post_accumulate_grad_hooks;
  return id;
}

void Tensor::remove_post_accumulate_grad_hook(std::uint64_t id) const {
  auto& hooks = const_cast<TensorImpl&>(checked("remove_post_accumulate_grad_hook")).post_accumulate_grad_hooks;
  for (auto it = hooks.begin(); it != hooks.end(); ++it) {
    if (it->first == id) {
      hooks.erase(it);
      --detail::post_accumulate_grad_hooks;
      return;
    }
  }
}

Tensor Tensor::detach() const {
  Tensor detached(checked("detach").data, nullptr);
  detached.impl_->version = impl_->version;  // one value, one count of its modifications
  return detached;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  checked("backward");
  run_backward(*this, gradient, retain_graph);
}

const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked("grad_fn").grad_fn; }

std::string Tensor::to_string() const {
  if (!impl_) return "Tensor(undefined)";
  const Array& v = *impl_->data;
  std::ostringstream out;
  out << "Tensor(shape=" << shape_str(shape_of(v));
  if (impl_->grad_fn) out << ", grad_fn=" << impl_->grad_fn->name;
  else if (impl_->requires_grad) out << ", requires_grad=true";
  out << ", values=[";
  const std::size_t shown = std::min<std::size_t>(v.size(), 16);
  for (std::size_t i = 0; i < shown; ++i) out << (i ? ", " : "") << v.data()[i];
  if (shown < v.size()) out << ", ... (" << v.size() << " in all)";
  out << "])";
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) { return out << tensor.to_string(); }

// --- factories -------------------------------------------------------------------------------

Tensor from_vector(const std::vector<float>& values, const Shape& shape) {
  if (values.size() != numel_of(shape)) {
    throw Error(fmt::format("from_vector: {} values cannot fill shape {} ({} elements)", values.size(),
                            shape_str(shape), numel_of(shape)));
  }
  Array a = Array::from_shape(shape);
  std::copy(values.begin(), values.end(), a.begin());
  return Tensor(std::move(a));
}

Tensor scalar_tensor(float value) { return Tensor(Array(value)); }

Tensor full(const Shape& shape, float value) {
  Array a = Array::from_shape(shape);
  a.fill(value);
  return Tensor(std::move(a));
}

Tensor zeros(const Shape& shape) { return full(shape, 0.f); }
Tensor ones(const Shape& shape) { return full(shape, 1.f); }
Tensor zeros_like(const Tensor& other) { return zeros(other.shape()); }
Tensor ones_like(const Tensor& other) { return ones(other.shape()); }

Tensor arange(float start, float end, float step) {
  if (step == 0.f || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step)) {
    throw Error(fmt::format("arange: start {}, end {}, step {}: expected finite values and a non-zero step",
                            start, end, step));
  }
  const double count = std::ceil((static_cast<double>(end) - start) / step);
  const std::size_t n = count > 0 ? static_cast<std::size_t>(count) : 0;
  Array a = Array::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) a(i) = static_cast<float>(start + static_cast<double>(step) * i);
  return Tensor(std::move(a));
}

Tensor arange(float end) { return arange(0.f, end, 1.f); }

namespace {
template <class Sample>
Tensor sampled(const Shape& shape, Sample sample) {
  Array a = Array::from_shape(shape);
  for (auto& v : a) v = sample();
  return Tensor(std::move(a));
}
}  // namespace

Tensor randn(const Shape& shape, Generator& generator) {
  return sampled(shape, [&] { return generator.normal(); });
}

Tensor rand(const Shape& shape, Generator& generator) {
  return sampled(shape, [&] { return generator.uniform(); });
}

Tensor uniform(const Shape& shape, float low, float high, Generator& generator) {
  if (!(low <= high)) throw Error(fmt::format("uniform: expected low <= high, got low {} and high {}", low, high));
  return sampled(shape, [&] { return generator.uniform(low, high); });
}

Tensor normal(const Shape& shape, float mean, float std, Generator& generator) {
  if (!(std >= 0.f)) throw Error(fmt::format("normal: expected std >= 0, got {}", std));
  return sampled(shape, [&] { return mean + std * generator.normal(); });
}

}  // namespace xgrad
