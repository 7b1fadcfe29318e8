// Reading PyTorch reference fixtures (JSON written by tests/fixtures/make_*.py) and comparing
// xgrad's results with them: shared by the parity tests.
#pragma once

#include <algorithm>
#include <cmath>
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

inline bool all_zero(const json& t) {
  for (const json& v : t.at("values"))
    if (v.get<double>() != 0.0) return false;
  return true;
}

}  // namespace torch_fixture
