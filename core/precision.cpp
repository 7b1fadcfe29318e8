#include <xgrad/core/precision.hpp>

#include <atomic>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad {

namespace {
std::atomic<Precision> current{Precision::fp32};
std::atomic<int> depth{0};  // autocast scopes open

struct ExitHooks {
  std::mutex mutex;
  std::vector<void (*)()> hooks;
};
ExitHooks& exit_hooks() {
  static ExitHooks hooks;
  return hooks;
}
}  // namespace

const char* precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw Error(fmt::format("precision must be fp32 or bf16, not '{}'", name));
}

Precision autocast_precision() { return current.load(std::memory_order_relaxed); }

autocast::autocast(Precision precision) : previous_(current.exchange(precision)) { ++depth; }

autocast::~autocast() {
  current.store(previous_);
  if (--depth > 0) return;
  ExitHooks& exit = exit_hooks();
  const std::lock_guard<std::mutex> lock(exit.mutex);
  for (void (*drop_cache)() : exit.hooks) drop_cache();
}

void on_autocast_exit(void (*drop_cache)()) {
  ExitHooks& exit = exit_hooks();
  const std::lock_guard<std::mutex> lock(exit.mutex);
  exit.hooks.push_back(drop_cache);
}

}  // namespace xgrad
