// Saving and loading state dicts: the exact encoding of doubles in float32, and the all-or-nothing
// load that reports every problem at once.
#include <xgrad/optim/state_dict.hpp>

#include <cfloat>
#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::optim {

// d = hi + r with hi = float(d): r is exact in double and has at most 29 significant bits, so
// r = mid + lo with mid = float(r) leaves lo = r - mid with at most 5 bits, exact in float
// (for |d| above about 1e-29, where no part falls below float's normal range).
Array real_to_array(double value) {
  Array parts = Array::from_shape({3});
  if (!std::isfinite(value)) {
    parts(0) = static_cast<float>(value);
    parts(1) = parts(2) = 0.f;
    return parts;
  }
  if (std::abs(value) > FLT_MAX) {
    throw Error(fmt::format("state_dict: {} is beyond float32's range and cannot be stored", value));
  }
  const float hi = static_cast<float>(value);
  const double rest = value - hi;
  const float mid = static_cast<float>(rest);
  const float lo = static_cast<float>(rest - mid);
  parts(0) = hi;
  parts(1) = mid;
  parts(2) = lo;
  return parts;
}

double array_to_real(const Array& parts) {
  if (parts.dimension() != 1 || parts.size() != 3) {
    throw Error(fmt::format("array_to_real: expected shape [3] (parts hi, mid, lo), got {}",
                            shape_str(shape_of(parts))));
  }
  return static_cast<double>(parts(0)) + (static_cast<double>(parts(1)) + static_cast<double>(parts(2)));
}

// --- StateWriter ---------------------------------------------------------------------------------

bool StateWriter::section(const std::string& prefix, bool present) {
  prefix_ = prefix;
  return present;
}

void StateWriter::real(const std::string& name, double& value) { out_[prefix_ + name] = real_to_array(value); }

void StateWriter::count(const std::string& name, std::int64_t& value) {
  out_[prefix_ + name] = real_to_array(static_cast<double>(value));
}

void StateWriter::flag(const std::string& name, bool& value) { out_[prefix_ + name] = Array(value ? 1.f : 0.f); }

void StateWriter::buffer(const std::string& name, Array& value, const Shape& shape) { out_[prefix_ + name] = value; }

// --- StateReader ---------------------------------------------------------------------------------

bool StateReader::section(const std::string& prefix, bool present) {
  prefix_ = prefix;
  auto it = in_.lower_bound(prefix);
  return it != in_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

const Array* StateReader::find(const std::string& key) {
  auto it = in_.find(key);
  if (it == in_.end()) {
    problems_.push_back(fmt::format("missing key '{}'", key));
    return nullptr;
  }
  used_.insert(key);
  return &it->second;
}

void StateReader::real(const std::string& name, double& value) {
  const std::string key = prefix_ + name;
  const Array* stored = find(key);
  if (!stored) return;
  if (stored->dimension() != 1 || stored->size() != 3) {
    problems_.push_back(fmt::format("'{}' has shape {}, expected [3] (a real number as float32 parts hi, mid, lo)",
                                    key, shape_str(shape_of(*stored))));
    return;
  }
  value = array_to_real(*stored);
}

void StateReader::count(const std::string& name, std::int64_t& value) {
  const std::string key = prefix_ + name;
  const Array* stored = find(key);
  if (!stored) return;
  if (stored->dimension() != 1 || stored->size() != 3) {
    problems_.push_back(fmt::format("'{}' has shape {}, expected [3] (a count as float32 parts hi, mid, lo)", key,
                                    shape_str(shape_of(*stored))));
    return;
  }
  const double real = array_to_real(*stored);
  if (!(std::floor(real) == real && std::abs(real) <= 9007199254740992.0)) {
    problems_.push_back(fmt::format("'{}' holds {}, expected a whole number", key, real));
    return;
  }
  value = static_cast<std::int64_t>(real);
}

void StateReader::flag(const std::string& name, bool& value) {
  const std::string key = prefix_ + name;
  const Array* stored = find(key);
  if (!stored) return;
  if (stored->dimension() != 0) {
    problems_.push_back(fmt::format("'{}' has shape {}, expected [] (a flag, 0 or 1)", key, shape_str(shape_of(*stored))));
    return;
  }
  const float flag = (*stored)();
  if (flag != 0.f && flag != 1.f) {
    problems_.push_back(fmt::format("'{}' holds {}, expected 0 or 1 (a flag)", key, flag));
    return;
  }
  value = flag == 1.f;
}

void StateReader::buffer(const std::string& name, Array& value, const Shape& shape) {
  const std::string key = prefix_ + name;
  const Array* stored = find(key);
  if (!stored) return;
  if (shape_of(*stored) != shape) {
    problems_.push_back(fmt::format("'{}' has shape {}, expected {}", key, shape_str(shape_of(*stored)), shape_str(shape)));
    return;
  }
  value = *stored;
}

std::vector<std::string> StateReader::problems() const {
  std::vector<std::string> all = problems_;
  for (const auto& [key, value] : in_) {
    if (!used_.count(key)) all.push_back(fmt::format("unexpected key '{}'", key));
  }
  return all;
}

// --- all or nothing --------------------------------------------------------------------------------

void load_all_or_nothing(const std::string& who, const StateDict& dict,
                         const std::function<void(StateVisitor&)>& visit, const std::function<void()>& validate) {
  StateDict backup;
  StateWriter writer(backup);
  visit(writer);

  StateReader reader(dict);
  visit(reader);
  try {
    validate();
  } catch (const Error& error) {
    reader.add_problem(error.what());
  }
  const std::vector<std::string> problems = reader.problems();
  if (problems.empty()) return;

  StateReader restore(backup);
  visit(restore);
  throw Error(fmt::format("{}: {} problem{} in the state dict:\n  {}", who, problems.size(),
                          problems.size() == 1 ? "" : "s", fmt::join(problems, "\n  ")));
}

}  // namespace xgrad::optim
