// A fresh folder under the system's temporary directory for one test, removed with everything in
// it when the test ends (passed or failed).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

class TempDir {
 public:
  /// `prefix` names the folder, e.g. "tokenizer" -> /tmp/xgrad_tokenizer_Ab12Cd.
  explicit TempDir(const std::string& prefix = "test") {
    std::string pattern = (std::filesystem::temp_directory_path() / ("xgrad_" + prefix + "_XXXXXX")).string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// The path of `name` inside the folder.
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// Writes `name` in the folder holding exactly `contents` (bytes), a new file each time (ext4
  /// flushes a file truncated and rewritten in place when it is closed); returns its path.
  std::string write(const std::string& name, const std::string& contents) const {
    const std::string path = file(name);
    std::filesystem::remove(path);
    std::ofstream out(path, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    REQUIRE(out.good());
    return path;
  }
  /// Names of the entries in the folder, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};
