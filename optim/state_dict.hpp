// State dicts of optimizers and schedulers: named float32 arrays from which a resumed run
// continues bit-identically. Each class names what it keeps once, in a visit function that both
// saving (StateWriter) and loading (StateReader) walk, so no member list is written twice.
//
// Encodings, chosen so that a float32 map holds every value exactly:
//   real  (lr, betas, eps, ...)    shape [3]: float32 parts [hi, mid, lo] whose sum, done in
//                                  double as hi + (mid + lo), is the double exactly (for 0
//                                  and every |x| from about 1e-29 to float32's maximum)
//   count (steps, epochs)          the same [3] encoding (exact for |n| < 2^53)
//   flag  (amsgrad, nesterov, ...) shape []: 0 or 1
//   buffer (exp_avg, ...)          the array itself, with the parameter's shape
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <xgrad/autograd/tensor.hpp>

namespace xgrad::optim {

using StateDict = std::map<std::string, Array>;

/// A double as three float32 parts that sum back to it exactly (see the file comment).
Array real_to_array(double value);
/// The double that real_to_array stored. Expects shape [3].
double array_to_real(const Array& parts);

/// Walks, by name, every value a resumed run needs. Names are relative to the current section.
class StateVisitor {
 public:
  virtual ~StateVisitor() = default;
  /// Starts the section `prefix` (say "state.3."), under which the next names go. Returns
  /// whether the section is there: when saving, `present`; when loading, whether the dict has
  /// a key under it.
  virtual bool section(const std::string& prefix, bool present) = 0;
  virtual void real(const std::string& name, double& value) = 0;
  virtual void count(const std::string& name, std::int64_t& value) = 0;
  virtual void flag(const std::string& name, bool& value) = 0;
  /// An array that must have `shape`.
  virtual void buffer(const std::string& name, Array& value, const Shape& shape) = 0;
};

/// Saves what it visits into a StateDict.
class StateWriter final : public StateVisitor {
 public:
  explicit StateWriter(StateDict& out) : out_(out) {}
  bool section(const std::string& prefix, bool present) override;
  void real(const std::string& name, double& value) override;
  void count(const std::string& name, std::int64_t& value) override;
  void flag(const std::string& name, bool& value) override;
  void buffer(const std::string& name, Array& value, const Shape& shape) override;

 private:
  StateDict& out_;
  std::string prefix_;
};

/// Loads what it visits from a StateDict, collecting every problem (missing key, wrong shape,
/// bad value) instead of stopping at the first; a value with a problem is left as it was.
class StateReader final : public StateVisitor {
 public:
  explicit StateReader(const StateDict& in) : in_(in) {}
  bool section(const std::string& prefix, bool present) override;
  void real(const std::string& name, double& value) override;
  void count(const std::string& name, std::int64_t& value) override;
  void flag(const std::string& name, bool& value) override;
  void buffer(const std::string& name, Array& value, const Shape& shape) override;

  /// Adds a problem found outside the visit (an invalid option, say).
  void add_problem(std::string problem) { problems_.push_back(std::move(problem)); }
  /// Every problem so far, plus one per key of the dict that nothing visited.
  std::vector<std::string> problems() const;

 private:
  const Array* find(const std::string& key);
  const StateDict& in_;
  std::string prefix_;
  std::set<std::string> used_;
  std::vector<std::string> problems_;
};

/// Loads `dict` through `visit` all or nothing: the current state is saved first, and if the
/// load finds any problem (or `validate` throws an Error) that state is put back and one Error
/// lists every problem, headed by `who` (say "Adam::load_state_dict (4 parameters)").
void load_all_or_nothing(const std::string& who, const StateDict& dict,
                         const std::function<void(StateVisitor&)>& visit, const std::function<void()>& validate);

}  // namespace xgrad::optim
