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
  bool cpu_bf16 = false;         // the CPU multiplies bf16 in hardware (AVX512_BF16 or AMX)
  bool int8_vnni = false;        // the CPU has int8 dot products (VNNI): int8 decoding's fast case
  bool bf16_native = false;      // bf16 autocast's GEMMs run on the CPU's bf16 instructions
  /// How bf16 autocast runs here: "native (...)" where bf16_native, else "emulated (fp32 products
  /// of bf16-rounded inputs; ...): slower than fp32".
  std::string bf16;
  std::vector<std::string> warnings;  // a kernel family below the CPU's ISA, and what to do about it

  /// One line: "kernels: oneDNN 2.6.3 avx2, row kernels avx2, 2 threads (AMD EPYC 7B13, avx2)".
  std::string summary() const;
  /// The reduced-precision line: "int8: VNNI dot products | 16-bit pair sums; bf16: ...".
  std::string precision_summary() const;
};

/// Inspects the CPU (cpuid) and the kernel libraries; threads as set by set_num_threads.
RuntimeInfo runtime_info();

/// summary(), then one line per warning, each starting "warning: ".
std::ostream& operator<<(std::ostream& out, const RuntimeInfo& info);

}  // namespace xgrad
