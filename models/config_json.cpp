#include <xgrad/models/config_json.hpp>

#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <xgrad/core/error.hpp>

namespace xgrad::models {

using json = nlohmann::json;

struct ConfigReader::Impl {
  std::string config;
  json object;
  std::set<std::string> read;

  /// The value of `key`, or null when absent; remembers that the key was asked for.
  const json* find(const char* key) {
    read.insert(key);
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }
  [[noreturn]] void bad(const char* key, const char* expected, const json& value) const {
    throw Error(fmt::format("{}::from_json: \"{}\" must be {}, got {}", config, key, expected, value.dump()));
  }
};

ConfigReader::ConfigReader(std::string config, const std::string& text) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  try {
    impl_->object = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}::from_json: not valid JSON: {}", impl_->config, printable(e.what())));
  }
  if (!impl_->object.is_object()) {
    throw Error(fmt::format("{}::from_json: expected a JSON object, got {}", impl_->config, impl_->object.dump()));
  }
}

ConfigReader::~ConfigReader() = default;

void ConfigReader::read(const char* key, std::size_t& field) {
  const json* value = impl_->find(key);
  if (!value) return;
  if (!value->is_number_integer() || value->get<std::int64_t>() < 0) impl_->bad(key, "a non-negative integer", *value);
  field = value->get<std::size_t>();
}

void ConfigReader::read(const char* key, std::int64_t& field) {
  const json* value = impl_->find(key);
  if (!value) return;
  if (!value->is_number_integer()) impl_->bad(key, "an integer", *value);
  field = value->get<std::int64_t>();
}

void ConfigReader::read(const char* key, float& field) {
  const json* value = impl_->find(key);
  if (!value) return;
  if (!value->is_number()) impl_->bad(key, "a number", *value);
  field = value->get<float>();
}

void ConfigReader::read(const char* key, bool& field) {
  const json* value = impl_->find(key);
  if (!value) return;
  if (!value->is_boolean()) impl_->bad(key, "a boolean", *value);
  field = value->get<bool>();
}

void ConfigReader::read(const char* key, std::string& field) {
  const json* value = impl_->find(key);
  if (!value) return;
  if (!value->is_string()) impl_->bad(key, "a string", *value);
  field = value->get<std::string>();
}

void ConfigReader::finish() const {
  for (const auto& [key, value] : impl_->object.items()) {
    if (!impl_->read.count(key)) throw Error(fmt::format("{}::from_json: unknown key \"{}\"", impl_->config, key));
  }
}

struct ConfigWriter::Impl {
  json object = json::object();
};

ConfigWriter::ConfigWriter() : impl_(std::make_unique<Impl>()) {}
ConfigWriter::~ConfigWriter() = default;

ConfigWriter& ConfigWriter::write(const char* key, std::size_t value) {
  impl_->object[key] = value;
  return *this;
}

ConfigWriter& ConfigWriter::write(const char* key, std::int64_t value) {
  impl_->object[key] = value;
  return *this;
}

ConfigWriter& ConfigWriter::write(const char* key, float value) {
  impl_->object[key] = json::parse(fmt::format("{}", value));  // the shortest text that reads back as value
  return *this;
}

ConfigWriter& ConfigWriter::write(const char* key, bool value) {
  impl_->object[key] = value;
  return *this;
}

ConfigWriter& ConfigWriter::write(const char* key, const std::string& value) {
  impl_->object[key] = value;
  return *this;
}

std::string ConfigWriter::dump() const { return impl_->object.dump(); }

}  // namespace xgrad::models
