// Files replaced in one step: the new contents go to a temporary file beside the target, are
// flushed to disk, then renamed over it. An interrupted write never destroys the previous file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace xgrad::utils {

/// A uniquely named temporary file in the target's folder, removed unless commit() renamed it
/// over the target. Errors throw xgrad::Error starting with `context` (e.g. "safetensors"), then
/// the target, what failed and the system's reason.
class AtomicFile {
 public:
  AtomicFile(std::string path, std::string context);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  /// Whether `file_name` is one of the temporary names AtomicFile gives (".TARGET.tmp-..."): what
  /// a process killed before commit() leaves behind.
  static bool is_temporary_name(const std::string& file_name);

  void append(const void* data, std::uint64_t bytes);
  void append(const std::string& text) { append(text.data(), text.size()); }
  /// fsync, close, rename over the target, fsync of the folder.
  void commit();

 private:
  [[noreturn]] void fail(const char* problem) const;
  std::string path_, context_;
  std::filesystem::path folder_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Writes `contents` to `path` atomically.
void write_file_atomically(const std::string& path, const std::string& contents, const std::string& context);

}  // namespace xgrad::utils
