#include <xgrad/autograd/profiler.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad {

struct Profiler::State {
  std::map<std::string, Row> rows;
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  void forward(const std::string& name) {
    const auto now = std::chrono::steady_clock::now();
    Row& row = rows[name];
    row.forward_ms += std::chrono::duration<double, std::milli>(now - last).count();
    ++row.forward_calls;
    last = now;
  }
};

namespace {
std::atomic<Profiler::State*> active{nullptr};
}  // namespace

Profiler::Profiler() : state_(new State) {
  State* expected = nullptr;
  if (!active.compare_exchange_strong(expected, state_)) {
    delete state_;
    throw Error("Profiler: another Profiler is already alive (profile one scope at a time)");
  }
}

Profiler::~Profiler() {
  active.store(nullptr);
  delete state_;
}

void Profiler::mark(const std::string& name) { state_->forward(name); }

std::vector<Profiler::Row> Profiler::rows() const {
  std::vector<Row> out;
  for (const auto& [name, row] : state_->rows) {
    out.push_back(row);
    out.back().name = name;
  }
  std::sort(out.begin(), out.end(), [](const Row& a, const Row& b) {
    return a.forward_ms + a.backward_ms > b.forward_ms + b.backward_ms;
  });
  return out;
}

std::string Profiler::table(double per) const {
  std::string text = fmt::format("{:<32} {:>10} {:>10} {:>10} {:>8}\n", "op", "fwd ms", "bwd ms", "total ms", "calls");
  double forward = 0, backward = 0;
  for (const Row& row : rows()) {
    text += fmt::format("{:<32} {:>10.2f} {:>10.2f} {:>10.2f} {:>8.0f}\n", row.name, row.forward_ms / per,
                        row.backward_ms / per, (row.forward_ms + row.backward_ms) / per, row.forward_calls / per);
    forward += row.forward_ms, backward += row.backward_ms;
  }
  text += fmt::format("{:<32} {:>10.2f} {:>10.2f} {:>10.2f}\n", "all", forward / per, backward / per,
                      (forward + backward) / per);
  return text;
}

namespace detail {

bool profiling() { return active.load(std::memory_order_relaxed) != nullptr; }

void profile_forward(const char* op) {
  if (Profiler::State* state = active.load()) state->forward(op);
}

void profile_backward(const char* op, double seconds) {
  if (Profiler::State* state = active.load()) {
    Profiler::Row& row = state->rows[op];
    row.backward_ms += seconds * 1e3;
    ++row.backward_calls;
    state->last = std::chrono::steady_clock::now();  // backward's time is not the next op's forward
  }
}

}  // namespace detail

}  // namespace xgrad
