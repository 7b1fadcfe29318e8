// Reading PyTorch reference fixtures (JSON written by tests/fixtures/make_*.py) and comparing
// xgrad's results with them: shared by the parity tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <xgrad/xgrad.hpp>

namespace torch_fixture {

using json = nlohmann::json;
using xgrad::Array;
using xgrad::Shape;

// |xgrad - torch| <= kRelTol * max(1, |torch|). The floor of 1 makes it absolute for values
// near 0: such values (a softmax or layer-norm gradient, a sum of terms of both signs) are
// differences of O(1) terms, so float32 leaves an error of about 1e-7 of those terms, not of
// the small result; a purely relative test would demand precision float32 does not have.
constexpr double kRelTol = 1e-5;
// Mismatches listed per tensor before "... and N more".
constexpr std::size_t kMaxListed = 4;

inline std::string format_number(double v) {
  std::ostringstream out;
  out.precision(9);
  out << v;
  return out.str();
}

/// The "cases" of a fixture file in tests/fixtures/, written by the script named.
inline json read_cases(const std::string& file, const std::string& script) {
  const std::string path = std::string(XGRAD_FIXTURES_DIR) + "/" + file;
  std::ifstream in(path);
  if (!in) throw xgrad::Error("cannot open " + path + " (written by tests/fixtures/" + script + ")");
  return json::parse(in).at("cases");
}

inline Shape shape_of_json(const json& t) { return t.at("shape").get<Shape>(); }

inline Array array_of_json(const json& t) {
  Array a = Array::from_shape(shape_of_json(t));
  const json& values = t.at("values");
  if (values.size() != a.size()) {
    throw xgrad::Error("fixture: values do not fill shape " + xgrad::shape_str(shape_of_json(t)));
  }
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<float>(values[i].get<double>());
  return a;
}

/// The largest |xgrad - torch| / max(1, |torch|) seen, and where: how much of the tolerance is used.
struct Worst {
  double error = 0;
  std::string where;
};

/// Lists the elements of `got` that differ from the fixture tensor `expected` beyond tolerance.
inline void compare(const std::string& what, const Array& got, const json& expected,
                    std::vector<std::string>& failures, Worst& worst) {
  const Shape shape = shape_of_json(expected);
  if (xgrad::shape_of(got) != shape) {
    failures.push_back(what + ": shape " + xgrad::shape_str(xgrad::shape_of(got)) + ", torch " +
                       xgrad::shape_str(shape));
    return;
  }
  const json& values = expected.at("values");
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double a = got.data()[i];
    const double b = values.at(i).get<double>();
    const double error = std::abs(a - b) / std::max(1.0, std::abs(b));
    if (error > worst.error) worst = {error, what + " element " + xgrad::index_str(i, shape)};
    if (error <= kRelTol) continue;  // false for NaN too
    if (++bad <= kMaxListed) {
      failures.push_back(what + " element " + xgrad::index_str(i, shape) + ": xgrad " + format_number(a) + ", torch " +
                         format_number(b));
    }
  }
  if (bad > kMaxListed) failures.push_back(what + ": ... and " + std::to_string(bad - kMaxListed) + " more");
}

/// One fixture case: its float inputs (leaves requiring grad, in fixture order) and its other
/// entries, read by section ("args", "config"). Every entry read is ticked off and unread() lists
/// the others, so a case that gains an option cannot pass while the C++ side ignores it. The
/// parity tests derive their case readers from it.
class FixtureCase {
 public:
  explicit FixtureCase(const json& spec) : spec_(spec) {
    for (const json& input : spec.at("inputs")) {
      names_.push_back(input.at("name").get<std::string>());
      inputs_.push_back(xgrad::Tensor(array_of_json(input), true));
    }
  }

  std::string name() const { return spec_.at("name").get<std::string>(); }
  const std::vector<std::string>& input_names() const { return names_; }
  /// Every float input, in fixture order.
  const std::vector<xgrad::Tensor>& inputs() const { return inputs_; }

  const xgrad::Tensor& in(const std::string& name) const {
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return inputs_[i];
    throw xgrad::Error("fixture case " + this->name() + " has no input '" + name + "'");
  }
  /// An input that some cases omit (layer_norm's weight and bias): undefined when absent.
  xgrad::Tensor optional_in(const std::string& name) const {
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return inputs_[i];
    return xgrad::Tensor();
  }
  bool has_input(const std::string& name) const { return optional_in(name).defined(); }

  /// The entries of these sections never read, as "section.key".
  std::vector<std::string> unread(std::initializer_list<const char*> sections) const {
    std::vector<std::string> unread;
    for (const char* section : sections)
      for (const auto& item : spec_.at(section).items())
        if (!read_.count(std::string(section) + "." + item.key())) unread.push_back(section + ("." + item.key()));
    return unread;
  }

 protected:
  /// Entry `key` of `section`, ticked off as read; a missing one throws naming the case.
  const json& entry(const char* section, const char* key) {
    const json& entries = spec_.at(section);
    if (!entries.contains(key)) throw xgrad::Error("fixture case " + name() + " has no " + section + " entry '" + key + "'");
    read_.insert(std::string(section) + "." + key);
    return entries.at(key);
  }
  bool has_entry(const char* section, const char* key) const { return spec_.at(section).contains(key); }
  /// Integer and boolean tensors, stored as {"shape", "int64"} and {"shape", "bool"}.
  xgrad::Indices indices_entry(const char* section, const char* key) {
    const json& t = entry(section, key);
    xgrad::Indices out = xgrad::Indices::from_shape(shape_of_json(t));
    const json& values = t.at("int64");
    for (std::size_t i = 0; i < out.size(); ++i) out.data()[i] = values.at(i).get<std::int64_t>();
    return out;
  }
  xgrad::Mask mask_entry(const char* section, const char* key) {
    const json& t = entry(section, key);
    xgrad::Mask out = xgrad::Mask::from_shape(shape_of_json(t));
    const json& values = t.at("bool");
    for (std::size_t i = 0; i < out.size(); ++i) out.data()[i] = values.at(i).get<bool>();
    return out;
  }

  const json& spec_;

 private:
  std::vector<std::string> names_;
  std::vector<xgrad::Tensor> inputs_;
  std::set<std::string> read_;
};

inline bool all_zero(const json& t) {
  for (const json& v : t.at("values"))
    if (v.get<double>() != 0.0) return false;
  return true;
}

}  // namespace torch_fixture
