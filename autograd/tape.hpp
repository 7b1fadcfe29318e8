// The tape: every differentiable op whose inputs require grad leaves a record (op name, inputs,
// backward closure). backward() replays the records reachable from the loss in reverse order of
// creation -- a reverse topological order, since an op is always recorded after its inputs --
// with a work list, never recursion, so a chain of any depth cannot overflow the stack.
//
// How an op is written (see docs/ARCHITECTURE.md):
//
//   Tensor exp(const Tensor& x) {
//     Array y = xt::exp(x.value());                       // forward
//     auto out = std::make_shared<Array>(std::move(y));
//     return record("exp", out, {x}, [out](BackwardContext& ctx) {
//       ctx.accumulate(0, ctx.grad_output() * *out);      // d/dx exp(x) = exp(x)
//     });
//   }
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include <xgrad/autograd/tensor.hpp>
#include <xgrad/kernels/grad_out.hpp>

namespace xgrad {

class BackwardContext;
using BackwardFn = std::function<void(BackwardContext&)>;

/// Where one input of a record sends its gradient: to the record that produced it, or, for a
/// leaf that requires grad, into that leaf's .grad. Neither: the input needs no gradient.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;  // the input's shape when recorded: the gradient must have it
  std::shared_ptr<const std::uint64_t> version;  // the input value's modification count,
  std::uint64_t recorded_version = 0;            // and what it was when the op used it
  bool needs_grad() const { return node != nullptr || leaf != nullptr; }
};

/// One record of the tape.
struct Node {
  Node(const char* name, std::vector<Edge> inputs, BackwardFn backward);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const char* name;            // the op, for error messages and graph dumps
  std::uint64_t sequence;      // creation order: replaying in decreasing order is a topological sort
  std::vector<Edge> inputs;
  BackwardFn backward;         // empty once released
  std::shared_ptr<const std::uint64_t> output_version;  // the output value's modification count (0 when made)
  Array grad;                  // gradient of this record's output, gathered during backward
  /// The output gradient a backward starts from, read where the caller holds it rather than
  /// copied into grad (set only on the record a backward starts at, while it runs).
  const Array* given_grad = nullptr;
  bool has_grad = false;

  bool released() const { return !backward; }
  /// Forgets the output gradient, gathered or given: after the record's backward, or when one fails.
  void drop_gradient() {
    grad = Array();
    given_grad = nullptr;
    has_grad = false;
  }
  /// Frees the closure and what it saved, and the links to earlier records.
  void release();
};

/// What a backward closure sees: the gradient of its output, and where its inputs' gradients go.
class BackwardContext {
 public:
  BackwardContext(Node& node, std::function<void(Node&)> on_first_grad)
      : node_(node), on_first_grad_(std::move(on_first_grad)) {}

  const char* op() const { return node_.name; }
  /// d(loss)/d(output), of the output's shape.
  const Array& grad_output() const { return node_.given_grad ? *node_.given_grad : node_.grad; }
  /// The output gradient itself, for a backward that passes it on unchanged or under another
  /// shape: moved out of the record when the record holds it, copied when the caller does (the
  /// gradient a backward starts from). grad_output() is empty afterwards.
  Array take_grad_output();
  /// Whether input i needs a gradient at all (skip computing the ones nobody needs).
  bool needs_grad(std::size_t input) const;
  /// Adds `grad` to input i's gradient. Its shape must be the input's: a mismatch throws an
  /// xgrad::Error naming the op, the input and both shapes (broadcast ops call sum_to_shape first).
  void accumulate(std::size_t input, Array grad);
  /// Input i's gradient buffer, zero-filled if this is its first contribution, for kernels that
  /// accumulate in place (GEMM with beta = 1).
  Array& grad_buffer(std::size_t input);
  /// Input i's gradient buffer for a kernel that writes beta * buffer + its contribution to every
  /// element (GEMM's beta): on the first contribution the buffer is left unfilled and beta is 0,
  /// afterwards it holds the gradient so far and beta is 1. Saves grad_buffer's zero-fill.
  Array& grad_target(std::size_t input, float& beta);
  /// grad_target for a kernel that puts its result into every element itself (kernels::GradOut:
  /// written the first time, added to afterwards); null data when input i needs no gradient.
  kernels::GradOut grad_out(std::size_t input);

 private:
  Array& slot(std::size_t input, bool& first);
  Node& node_;
  std::function<void(Node&)> on_first_grad_;
};

namespace detail {
/// record()'s checks (the profiler's count, anomaly mode, defined inputs); true when grad mode is
/// on and an input requires grad, so that the output needs a tape record.
bool needs_record(const char* op, const Array& output, const Tensor* inputs, std::size_t count);
/// The output tensor with its tape record.
Tensor recorded(const char* op, std::shared_ptr<Array> output, const Tensor* inputs, std::size_t count,
                BackwardFn backward);
/// record() over `count` inputs at `inputs`.
template <class Backward>
Tensor record(const char* op, std::shared_ptr<Array> output, const Tensor* inputs, std::size_t count,
              Backward&& backward) {
  if (!needs_record(op, *output, inputs, count)) return Tensor(std::move(output), nullptr);
  return recorded(op, std::move(output), inputs, count, BackwardFn(std::forward<Backward>(backward)));
}
}  // namespace detail

/// Returns the output tensor of an op. With grad mode on and any input requiring grad, the
/// output gets a tape record holding the inputs' edges and `backward`; otherwise `backward` is
/// dropped unconverted (no std::function is made) and the output is a plain tensor.
template <class Backward>
Tensor record(const char* op, std::shared_ptr<Array> output, std::initializer_list<Tensor> inputs,
              Backward&& backward) {
  return detail::record(op, std::move(output), inputs.begin(), inputs.size(), std::forward<Backward>(backward));
}
template <class Backward>
Tensor record(const char* op, std::shared_ptr<Array> output, const std::vector<Tensor>& inputs,
              Backward&& backward) {
  return detail::record(op, std::move(output), inputs.data(), inputs.size(), std::forward<Backward>(backward));
}
template <class Backward>
Tensor record(const char* op, Array output, std::initializer_list<Tensor> inputs, Backward&& backward) {
  return record(op, std::make_shared<Array>(std::move(output)), inputs, std::forward<Backward>(backward));
}
template <class Backward>
Tensor record(const char* op, Array output, const std::vector<Tensor>& inputs, Backward&& backward) {
  return record(op, std::make_shared<Array>(std::move(output)), inputs, std::forward<Backward>(backward));
}

namespace detail {
/// How many post-accumulate-grad hooks are registered on all leaves: while none are, backward
/// skips the pass that finds when each leaf's gradient is final.
extern std::atomic<long> post_accumulate_grad_hooks;
const char* node_name(const Node& node);
}  // namespace detail

/// Runs `callback` once the backward now running has finished (every gradient accumulated and
/// every post-accumulate hook run), as PyTorch's queue_callback: how a hook defers work to the
/// end of the backward. Called outside a backward, it throws.
void queue_backward_callback(std::function<void()> callback);

/// Runs backward from `root`; what Tensor::backward calls.
void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph);

/// Records alive whose closure has not been released: 0 after a backward without
/// retain_graph has consumed a graph whose outputs were then dropped. For leak tests.
long live_records();

// --- grad mode ---------------------------------------------------------------------------------
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

/// Within its scope no op records anything (inference, optimizer updates), as torch::NoGradGuard.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(is_grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// --- anomaly detection ---------------------------------------------------------------------------

/// Anomaly mode (off by default; torch.autograd.set_detect_anomaly): every op's output is
/// checked for NaN and Inf as it is made, and every gradient a backward step produces, so the
/// first op that went wrong throws an xgrad::Error naming it, its shapes and the first bad index.
/// Costs a pass over every array: for finding a NaN, not for training.
bool is_anomaly_enabled();
void set_detect_anomaly(bool enabled);
/// Anomaly mode within its scope (torch::autograd::DetectAnomalyGuard).
class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() : previous_(is_anomaly_enabled()) { set_detect_anomaly(true); }
  ~DetectAnomalyGuard() { set_detect_anomaly(previous_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace xgrad
