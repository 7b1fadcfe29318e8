#include <xgrad/core/precision.hpp>

#include <atomic>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad {

namespace {
std::atomic<Precision> current{Precision::fp32};
}  // namespace

const char* precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw Error(fmt::format("precision must be fp32 or bf16, not '{}'", name));
}

Precision autocast_precision() { return current.load(std::memory_order_relaxed); }

autocast::autocast(Precision precision) : previous_(current.exchange(precision)) {}

autocast::~autocast() { current.store(previous_); }

}  // namespace xgrad
