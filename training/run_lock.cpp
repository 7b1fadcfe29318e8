// The run folder's lock: flock on RUN/.lock, which also holds the holder's pid, host and start
// time for the message another process gets.
#include <xgrad/training/run_lock.hpp>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::training {

namespace {

std::string host_name() {
  char name[256] = {};
  return ::gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : std::string("?");
}

/// What the holder wrote into the lock file (at most a line), or "" if unreadable.
std::string holder(int fd) {
  char text[256] = {};
  const ssize_t n = ::pread(fd, text, sizeof(text) - 1, 0);
  if (n <= 0) return "";
  std::string line(text, static_cast<std::size_t>(n));
  line = line.substr(0, line.find('\n'));
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return line;
}

}  // namespace

RunLock::RunLock(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw Error(fmt::format("run folder '{}': cannot create it: {}", dir, error.message()));
  const std::string path = (std::filesystem::path(dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0) throw Error(fmt::format("run folder '{}': cannot open its lock '{}': {}", dir, path, std::strerror(errno)));
  int locked;
  do {
    locked = ::flock(fd_, LOCK_EX | LOCK_NB);
  } while (locked != 0 && errno == EINTR);
  if (locked != 0) {
    const int cause = errno;
    const std::string who = holder(fd_);
    ::close(fd_);
    fd_ = -1;
    if (cause == EWOULDBLOCK) {
      throw Error(fmt::format("run folder '{}' is in use by another training process ({}): one process trains a "
                              "run at a time; wait for it to end or choose another --run-dir",
                              dir, who.empty() ? "holder unknown" : who));
    }
    throw Error(fmt::format("run folder '{}': cannot lock '{}': {}", dir, path, std::strerror(cause)));
  }
  // Ours now: say who holds it.
  const std::time_t now = std::time(nullptr);
  char started[32] = {};
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S UTC", &utc);
  const std::string text = fmt::format("pid {} on {}, since {}\n", ::getpid(), host_name(), started);
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t written = ::pwrite(fd_, text.data(), text.size(), 0);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace xgrad::training
