// A model's Config as the strict JSON object a checkpoint carries in its "config" metadata: the
// one reader and the one writer every Config's from_json and to_json go through.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace xgrad::models {

/// Reads a config object field by field. Absent keys leave the field at its default; a value of
/// the wrong type, a key no field read (finish()), text that is not JSON or not an object throw
/// xgrad::Error: "<Config>::from_json: \"key\" must be a non-negative integer, got -3".
class ConfigReader {
 public:
  /// `config` names the Config in the errors ("TransformerConfig").
  ConfigReader(std::string config, const std::string& text);
  ~ConfigReader();
  ConfigReader(const ConfigReader&) = delete;
  ConfigReader& operator=(const ConfigReader&) = delete;

  void read(const char* key, std::size_t& field);   ///< a non-negative integer
  void read(const char* key, std::int64_t& field);  ///< an integer
  void read(const char* key, float& field);         ///< a number
  void read(const char* key, bool& field);          ///< a boolean
  void read(const char* key, std::string& field);   ///< a string
  /// Throws on the first key (in key order) that no read() asked for.
  void finish() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Writes a config object; keys come out sorted, floats in their shortest form (0.1, as Python
/// writes it, not 0.10000000149).
class ConfigWriter {
 public:
  ConfigWriter();
  ~ConfigWriter();
  ConfigWriter(const ConfigWriter&) = delete;
  ConfigWriter& operator=(const ConfigWriter&) = delete;

  ConfigWriter& write(const char* key, std::size_t value);
  ConfigWriter& write(const char* key, std::int64_t value);
  ConfigWriter& write(const char* key, float value);
  ConfigWriter& write(const char* key, bool value);
  ConfigWriter& write(const char* key, const std::string& value);
  /// The compact JSON text.
  std::string dump() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xgrad::models
