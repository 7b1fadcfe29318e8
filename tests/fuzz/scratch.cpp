// The fuzz targets' scratch folder: one per process, under the system's temporary directory.
#include "fuzz.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace xgrad::fuzz {

namespace {

struct Scratch {
  std::string dir;
  Scratch() {
    std::string pattern = (std::filesystem::temp_directory_path() / "xgrad_fuzz_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("fuzz: mkdtemp");
      std::abort();
    }
    dir = pattern;
  }
  ~Scratch() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};

Scratch& scratch() {
  static Scratch folder;
  return folder;
}

}  // namespace

const std::string& scratch_dir() { return scratch().dir; }

std::string scratch_file(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror("fuzz: open");
    std::abort();
  }
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) {
      std::perror("fuzz: write");
      std::abort();
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return path;
}

namespace {
std::string noted;
}  // namespace

void outcome(const char* what) {
  if (!noted.empty()) noted += " | ";
  const std::size_t limit = noted.size() + 100;
  bool quoted = false;
  for (const char* c = what; *c != '\0' && noted.size() < limit; ++c) {
    if (*c == '\'') {
      quoted = !quoted;
      if (quoted) noted += "'*'";
    } else if (!quoted && !(*c >= '0' && *c <= '9')) {
      noted += *c;
    }
  }
}

std::string take_outcome() { return std::exchange(noted, std::string()); }

}  // namespace xgrad::fuzz
