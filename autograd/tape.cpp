#include <xgrad/autograd/tape.hpp>

#include <chrono>
#include <cmath>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <xtensor/xnoalias.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/autograd/profiler.hpp>

namespace xgrad {

namespace {
std::atomic<std::uint64_t> next_sequence{0};
std::atomic<long> live_count{0};
thread_local bool grad_enabled = true;
std::atomic<bool> anomaly_enabled{false};

/// The flat index of the first NaN or Inf in a, or a.size().
std::size_t first_non_finite(const Array& a) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a.data()[i])) return i;
  }
  return a.size();
}

/// "NaN", "inf" or "-inf".
std::string non_finite_name(float v) { return std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf"; }
}  // namespace

bool is_grad_enabled() { return grad_enabled; }
void set_grad_enabled(bool enabled) { grad_enabled = enabled; }
bool is_anomaly_enabled() { return anomaly_enabled.load(); }
void set_detect_anomaly(bool enabled) { anomaly_enabled = enabled; }
long live_records() { return live_count.load(); }

Node::Node(const char* name, std::vector<Edge> inputs, BackwardFn backward)
    : name(name), sequence(next_sequence++), inputs(std::move(inputs)), backward(std::move(backward)) {
  ++live_count;
}

void Node::release() {
  if (backward) {
    backward = nullptr;
    --live_count;
  }
  inputs.clear();
}

Node::~Node() {
  if (backward) --live_count;
  // Destroying a long chain through nested shared_ptr destructors would recurse once per record.
  // Unlink it instead: records owned only by this chain are emptied here, one at a time.
  std::vector<std::shared_ptr<Node>> pending;
  for (auto& edge : inputs) {
    if (edge.node) pending.push_back(std::move(edge.node));
  }
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    if (node.use_count() == 1) {
      for (auto& edge : node->inputs) {
        if (edge.node) pending.push_back(std::move(edge.node));
      }
    }
  }
}

// --- BackwardContext -----------------------------------------------------------------------------

Array BackwardContext::take_grad_output() {
  if (node_.given_grad) return *node_.given_grad;
  return std::move(node_.grad);
}

bool BackwardContext::needs_grad(std::size_t input) const {
  return input < node_.inputs.size() && node_.inputs[input].needs_grad();
}

Array& BackwardContext::slot(std::size_t input, bool& first) {
  if (input >= node_.inputs.size()) {
    throw Error(fmt::format("{}: backward wrote a gradient for input {}, but the op has {} inputs", node_.name,
                            input, node_.inputs.size()));
  }
  Edge& edge = node_.inputs[input];
  if (edge.node) {
    Node& target = *edge.node;
    first = !target.has_grad;
    if (first) {
      on_first_grad_(target);  // throws if the target was released: it is left untouched
      target.has_grad = true;
    }
    return target.grad;
  }
  if (edge.leaf) {
    first = !edge.leaf->grad;
    if (first) edge.leaf->grad = std::make_shared<Array>();
    return *edge.leaf->grad;
  }
  throw Error(fmt::format("{}: backward wrote a gradient for input {}, which does not require grad "
                          "(check needs_grad first)",
                          node_.name, input));
}

void BackwardContext::accumulate(std::size_t input, Array grad) {
  if (!needs_grad(input)) return;
  const Shape& expected = node_.inputs[input].shape;
  if (grad.dimension() != expected.size() || !std::equal(expected.begin(), expected.end(), grad.shape().begin())) {
    throw Error(fmt::format("{}: backward produced a gradient of shape {} for input {} of shape {}", node_.name,
                            shape_str(shape_of(grad)), input, shape_str(expected)));
  }
  bool first = false;
  Array& target = slot(input, first);
  if (first) {
    target = std::move(grad);
  } else {
    xt::noalias(target) += grad;
  }
}

Array& BackwardContext::grad_buffer(std::size_t input) {
  bool first = false;
  Array& target = slot(input, first);
  if (first) {
    target = Array::from_shape(node_.inputs[input].shape);
    target.fill(0.f);
  }
  return target;
}

Array& BackwardContext::grad_target(std::size_t input, float& beta) {
  bool first = false;
  Array& target = slot(input, first);
  if (first) target = Array::from_shape(node_.inputs[input].shape);
  beta = first ? 0.f : 1.f;
  return target;
}

kernels::GradOut BackwardContext::grad_out(std::size_t input) {
  if (!needs_grad(input)) return {};
  float beta = 0.f;
  float* data = grad_target(input, beta).data();
  return {data, beta != 0.f};
}

// --- recording -----------------------------------------------------------------------------------

namespace detail {

bool needs_record(const char* op, const Array& output, const Tensor* inputs, std::size_t count) {
  if (profiling()) profile_forward(op);
  if (anomaly_enabled) {
    const std::size_t bad = first_non_finite(output);
    if (bad < output.size()) {
      std::string shapes;
      for (std::size_t i = 0; i < count; ++i) {
        shapes += (shapes.empty() ? "" : ", ") + (inputs[i].defined() ? shape_str(inputs[i].shape()) : std::string("undefined"));
      }
      throw Error(fmt::format("anomaly: the forward of '{}' produced {} at flat index {} of its output {} (inputs {})",
                              op, non_finite_name(output.data()[bad]), bad, shape_str(shape_of(output)), shapes));
    }
  }
  bool any_requires_grad = false;
  if (grad_enabled) {
    for (std::size_t i = 0; i < count; ++i) {
      if (!inputs[i].defined()) throw Error(fmt::format("{}: an input tensor is undefined", op));
      any_requires_grad = any_requires_grad || inputs[i].requires_grad();
    }
  }
  return any_requires_grad;
}

Tensor recorded(const char* op, std::shared_ptr<Array> output, const Tensor* inputs, std::size_t count,
                BackwardFn backward) {
  std::vector<Edge> edges;
  edges.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const Tensor& input = inputs[i];
    Edge edge;
    edge.shape = input.shape();
    edge.version = input.impl()->version;
    edge.recorded_version = *input.impl()->version;
    if (input.grad_fn()) edge.node = input.grad_fn();
    else if (input.requires_grad()) edge.leaf = input.impl_ptr();
    edges.push_back(std::move(edge));
  }
  auto node = std::make_shared<Node>(op, std::move(edges), std::move(backward));
  Tensor result(std::move(output), node);
  node->output_version = result.impl()->version;
  return result;
}

}  // namespace detail

// --- backward ------------------------------------------------------------------------------------

namespace {
struct LaterFirst {
  bool operator()(const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) const {
    return a->sequence < b->sequence;
  }
};

std::string released_message(const Node& node) {
  return fmt::format(
      "backward: the record of '{}' was already released by an earlier backward(); call backward(grad, "
      "/*retain_graph=*/true) the first time to go through a graph twice",
      node.name);
}

/// A record's backward reads values saved when the op ran: none of its inputs' or its output's
/// values may have been modified in place since (PyTorch: "one of the variables needed for
/// gradient computation has been modified by an inplace operation").
void check_versions(const Node& node) {
  for (std::size_t i = 0; i < node.inputs.size(); ++i) {
    const Edge& edge = node.inputs[i];
    if (edge.version && *edge.version != edge.recorded_version) {
      throw Error(fmt::format("backward: input {} of '{}' (shape {}) was modified in place after '{}' used it: its "
                              "version is {}, expected {}. Modify values only after backward, or on a copy",
                              i, node.name, shape_str(edge.shape), node.name, *edge.version, edge.recorded_version));
    }
  }
  if (node.output_version && *node.output_version != 0) {
    throw Error(fmt::format("backward: the output of '{}' was modified in place before backward reached it: its "
                            "version is {}, expected 0. Modify values only after backward, or on a copy",
                            node.name, *node.output_version));
  }
}

/// In anomaly mode, after a record's backward: the gradients it passed to its inputs.
void check_gradients(const Node& node) {
  for (std::size_t i = 0; i < node.inputs.size(); ++i) {
    const Edge& edge = node.inputs[i];
    const Array* grad = edge.node && edge.node->has_grad ? &edge.node->grad
                        : edge.leaf && edge.leaf->grad  ? edge.leaf->grad.get()
                                                        : nullptr;
    if (!grad) continue;
    const std::size_t bad = first_non_finite(*grad);
    if (bad < grad->size()) {
      throw Error(fmt::format("anomaly: the backward of '{}' produced {} at flat index {} of the gradient of its "
                              "input {} (shape {})",
                              node.name, non_finite_name(grad->data()[bad]), bad, i, shape_str(edge.shape)));
    }
  }
}

}  // namespace

namespace detail {
std::atomic<long> post_accumulate_grad_hooks{0};
const char* node_name(const Node& node) { return node.name; }
}  // namespace detail

namespace {

/// The leaves with post-accumulate hooks that records reachable from `start` send gradients to,
/// with how many edges each still waits for.
struct Awaited {
  std::shared_ptr<TensorImpl> leaf;
  std::size_t edges = 0;
};

std::unordered_map<TensorImpl*, Awaited> leaves_awaited(const std::shared_ptr<Node>& start) {
  std::unordered_map<TensorImpl*, Awaited> awaited;
  std::unordered_set<const Node*> seen{start.get()};
  std::vector<const Node*> stack{start.get()};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    for (const Edge& edge : node->inputs) {
      if (edge.leaf && !edge.leaf->post_accumulate_grad_hooks.empty()) {
        Awaited& entry = awaited[edge.leaf.get()];
        entry.leaf = edge.leaf;
        ++entry.edges;
      }
      if (edge.node && seen.insert(edge.node.get()).second) stack.push_back(edge.node.get());
    }
  }
  return awaited;
}

thread_local bool in_backward = false;
thread_local std::vector<std::function<void()>> backward_callbacks;

/// Marks this thread as running a backward for its scope; the callbacks queued meanwhile run at
/// finish(), or are dropped if the backward throws.
class BackwardScope {
 public:
  BackwardScope() {
    if (in_backward) throw Error("backward: called from inside another backward (a hook or a backward closure)");
    in_backward = true;
  }
  ~BackwardScope() {
    in_backward = false;
    backward_callbacks.clear();
  }
  void finish() {
    for (std::size_t i = 0; i < backward_callbacks.size(); ++i) {  // a callback may queue another
      const std::function<void()> callback = backward_callbacks[i];
      callback();
    }
  }
};

void run_post_accumulate_hooks(const std::shared_ptr<TensorImpl>& leaf) {
  const auto hooks = leaf->post_accumulate_grad_hooks;  // a hook may remove itself
  const Tensor handle(leaf);
  for (const auto& hook : hooks) hook.second(handle);
}

}  // namespace

void queue_backward_callback(std::function<void()> callback) {
  if (!in_backward) throw Error("queue_backward_callback: no backward is running on this thread");
  backward_callbacks.push_back(std::move(callback));
}

void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
  if (!root.requires_grad()) {
    throw Error(fmt::format("backward: the tensor of shape {} does not require grad and no op recorded it "
                            "(mark its leaves with set_requires_grad(true) before computing it)",
                            shape_str(root.shape())));
  }
  Array seed;
  // The caller's gradient is read in place, as PyTorch does, when its array is held by that
  // tensor alone: nothing this backward writes (a leaf's gradient, a saved value) can be it. An
  // array held elsewhere too (a leaf's .grad(), an op's output) is copied first.
  const Array* given = nullptr;
  if (gradient.defined()) {
    if (gradient.shape() != root.shape()) {
      throw Error(fmt::format("backward: the output gradient has shape {}, expected the output's shape {}",
                              shape_str(gradient.shape()), shape_str(root.shape())));
    }
    if (root.grad_fn() && gradient.impl()->data.use_count() == 1) given = &gradient.value();
    else seed = gradient.value();
  } else {
    if (root.numel() != 1) {
      throw Error(fmt::format("backward: a gradient can be implied only for a one-element output; this one has "
                              "shape {}: pass backward(gradient) with that shape",
                              shape_str(root.shape())));
    }
    seed = Array::from_shape(root.shape());
    seed.fill(1.f);
  }

  BackwardScope scope;
  if (!root.grad_fn()) {  // a leaf: its gradient is the seed itself
    TensorImpl& leaf = *root.impl();
    if (!leaf.grad) leaf.grad = std::make_shared<Array>(std::move(seed));
    else xt::noalias(*leaf.grad) += seed;
    if (!leaf.post_accumulate_grad_hooks.empty()) run_post_accumulate_hooks(root.impl_ptr());
    scope.finish();
    return;
  }

  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, LaterFirst> ready;
  const std::shared_ptr<Node>& start = root.grad_fn();
  if (start->released()) throw Error(released_message(*start));
  // Leaves with hooks: how many edges into each are still to run. The last one makes its
  // gradient final; leaves whose records never ran are final when the backward ends.
  std::unordered_map<TensorImpl*, Awaited> awaited;
  if (detail::post_accumulate_grad_hooks > 0) awaited = leaves_awaited(start);
  std::vector<std::shared_ptr<TensorImpl>> final_leaves;

  std::shared_ptr<Node> running = start;  // the record whose backward is running (or about to)
  try {
    start->grad = std::move(seed);
    start->given_grad = given;
    start->has_grad = true;
    ready.push(start);
    while (!ready.empty()) {
      std::shared_ptr<Node> node = ready.top();
      ready.pop();
      running = node;
      // Records that receive their first gradient join the work list; the edge holding them is
      // found through the current node, whose inputs are the only ones it can reach.
      BackwardContext ctx(*node, [&](Node& target) {
        if (target.released()) throw Error(released_message(target));
        for (const Edge& edge : node->inputs) {
          if (edge.node.get() == &target) {
            ready.push(edge.node);
            return;
          }
        }
      });
      check_versions(*node);
      if (detail::profiling()) {
        const auto start = std::chrono::steady_clock::now();
        node->backward(ctx);
        detail::profile_backward(node->name,
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      } else {
        node->backward(ctx);
      }
      if (anomaly_enabled) check_gradients(*node);
      node->drop_gradient();
      if (!awaited.empty()) {
        for (const Edge& edge : node->inputs) {
          const auto it = edge.leaf ? awaited.find(edge.leaf.get()) : awaited.end();
          if (it != awaited.end() && --it->second.edges == 0) final_leaves.push_back(edge.leaf);
        }
      }
      if (!retain_graph) node->release();
      for (const auto& leaf : final_leaves) run_post_accumulate_hooks(leaf);
      final_leaves.clear();
    }
  } catch (...) {
    // Leave no half-gathered gradient behind for the next backward, nor the caller's: not in the
    // records waiting, nor in the one whose backward threw (which would take a later gradient for
    // a second one).
    running->drop_gradient();
    while (!ready.empty()) {
      ready.top()->drop_gradient();
      ready.pop();
    }
    throw;
  }
  // Leaves whose records received no gradient: nothing more will come.
  for (const auto& entry : awaited) {
    if (entry.second.edges > 0) final_leaves.push_back(entry.second.leaf);
  }
  for (const auto& leaf : final_leaves) run_post_accumulate_hooks(leaf);
  scope.finish();
}

}  // namespace xgrad
