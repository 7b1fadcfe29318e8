// An op-level profiler, as torch.autograd.profiler.profile: while a Profiler is alive, every op
// the tape sees is timed, forward and backward, and the totals are given per op name.
#pragma once

#include <string>
#include <vector>

namespace xgrad {

/// Times ops from construction to destruction (one Profiler at a time). An op's forward time is
/// the wall time since the previous op (or mark) ended: ops record their result when they are
/// done, so this is the op's own time when ops run back to back; work between ops (an optimizer
/// step, batching) is attributed with mark(). An op's backward time is its closure's.
class Profiler {
 public:
  Profiler();
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  /// Attributes the time since the previous op or mark to `name`, as the forward of a pseudo-op
  /// (e.g. "adam.step"): call it after work that is not an op.
  void mark(const std::string& name);

  struct Row {
    std::string name;
    double forward_ms = 0, backward_ms = 0;
    long forward_calls = 0, backward_calls = 0;
  };
  /// Per op name, by total time, largest first.
  std::vector<Row> rows() const;
  /// rows() as a text table, times divided by `per` (e.g. the number of steps profiled).
  std::string table(double per = 1) const;

  struct State;  // the totals, reached by the tape's hooks below

 private:
  State* state_;
};

namespace detail {
/// The tape's hooks (autograd/tape.cpp): whether a profiler is alive, an op recorded, a closure run.
bool profiling();
void profile_forward(const char* op);
void profile_backward(const char* op, double seconds);
}  // namespace detail

}  // namespace xgrad
