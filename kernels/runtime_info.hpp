// What runs on this machine: the CPU, the ISA each kernel family uses, the threads, and a warning
// when a kernel runs below what the CPU offers.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace xgrad {

struct RuntimeInfo {
  std::string cpu;               // the CPU's brand string, e.g. "AMD EPYC 7B13"
  std::string cpu_isa;           // the widest vector ISA the CPU and the OS offer: "avx512_core_bf16", "avx2", ...
  std::string gemm_library;      // "oneDNN 2.6.3"
  std::string gemm_isa;          // the ISA oneDNN's JIT dispatches to on this CPU
  std::string row_kernel_isa;    // the ISA xgrad's own loops (softmax, layer norm, ...) were compiled for
  int threads = 1;               // OpenMP threads, shared by the GEMMs and the row kernels
  std::vector<std::string> warnings;  // a kernel family below the CPU's ISA, and what to do about it

  /// One line: "kernels: oneDNN 2.6.3 avx2, row kernels avx2, 2 threads (AMD EPYC 7B13)".
  std::string summary() const;
};

/// Inspects the CPU (cpuid) and the kernel libraries; threads as set by set_num_threads.
RuntimeInfo runtime_info();

/// summary(), then one line per warning, each starting "warning: ".
std::ostream& operator<<(std::ostream& out, const RuntimeInfo& info);

}  // namespace xgrad
