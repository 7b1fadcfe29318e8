// One training process per run folder: an advisory lock on RUN/.lock, held for the process's
// life. The kernel releases it when the holder exits or is killed, so a crashed run never leaves
// its folder locked.
#pragma once

#include <string>

namespace xgrad::training {

class RunLock {
 public:
  /// Takes the lock of run folder `dir` (created if missing), or throws xgrad::Error naming the
  /// folder and the process holding it (pid, host, start time).
  explicit RunLock(const std::string& dir);
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  /// Releases the lock (closing the file is enough; the file itself stays).
  ~RunLock();

 private:
  int fd_ = -1;
};

}  // namespace xgrad::training
