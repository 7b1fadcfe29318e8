// Atomic file replacement: temporary file, fsync, rename, fsync of the folder.
#include <xgrad/utils/atomic_file.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::utils {

namespace {
/// Largest single write request: Linux transfers at most about 2 GiB per call.
constexpr std::uint64_t kMaxTransfer = std::uint64_t(1) << 30;
/// What marks the name of a temporary file: ".TARGET.tmp-PID-RANDOM".
constexpr const char* kTemporaryMark = ".tmp-";
}  // namespace

bool AtomicFile::is_temporary_name(const std::string& file_name) {
  return file_name.size() > 1 && file_name[0] == '.' && file_name.find(kTemporaryMark) != std::string::npos;
}

AtomicFile::AtomicFile(std::string path, std::string context) : path_(std::move(path)), context_(std::move(context)) {
  const std::filesystem::path target(path_);
  folder_ = target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
  std::random_device entropy;
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    const std::string name =
        fmt::format(".{}{}{}-{:08x}{:08x}", target.filename().string(), kTemporaryMark, ::getpid(), entropy(), entropy());
    temp_ = (folder_ / name).string();
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && errno != EEXIST) fail("cannot create the temporary file");
  }
  if (fd_ < 0) fail("cannot create a temporary file of a name not yet taken");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::append(const void* data, std::uint64_t bytes) {
  const auto* in = static_cast<const unsigned char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, in, std::min(bytes, kMaxTransfer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("writing the temporary file failed");
    in += n;
    bytes -= static_cast<std::uint64_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail("fsync of the temporary file failed");
  const int fd = fd_;
  fd_ = -1;
  // close() reports delayed write errors too.
  if (::close(fd) != 0) fail("closing the temporary file failed");
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail("renaming the temporary file over the target failed");
  committed_ = true;
  // The rename is durable once the folder is synced. Some file systems cannot sync a folder
  // (EINVAL): the rename is then as durable as they make it.
  const int folder = ::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool synced = folder >= 0 && (::fsync(folder) == 0 || errno == EINVAL);
  if (folder >= 0) ::close(folder);
  if (!synced) fail("the file is in place but syncing its folder failed");
}

void AtomicFile::fail(const char* problem) const {
  const std::string cause = std::strerror(errno);
  throw Error(fmt::format("{}: '{}': {} ('{}'): {}", context_, path_, problem, temp_, cause));
}

void write_file_atomically(const std::string& path, const std::string& contents, const std::string& context) {
  AtomicFile file(path, context);
  file.append(contents);
  file.commit();
}

}  // namespace xgrad::utils
