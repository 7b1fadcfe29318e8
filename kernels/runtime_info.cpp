// runtime_info: the CPU's features from cpuid (and the OS's register state from xgetbv), the ISA
// oneDNN dispatches to, and the ISA the library's own loops were compiled for.
#include <xgrad/kernels/runtime_info.hpp>

#include <cpuid.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ostream>

#include <dnnl.h>
#include <fmt/format.h>
#include <omp.h>

#include <xgrad/kernels/gemm.hpp>

namespace xgrad {

namespace {

/// Vector ISAs in increasing order; the names are oneDNN's.
enum class Isa { sse2, sse41, avx, avx2, avx512_core, avx512_core_vnni, avx512_core_bf16, avx512_core_amx };

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::sse2: return "sse2";
    case Isa::sse41: return "sse41";
    case Isa::avx: return "avx";
    case Isa::avx2: return "avx2";
    case Isa::avx512_core: return "avx512_core";
    case Isa::avx512_core_vnni: return "avx512_core_vnni";
    case Isa::avx512_core_bf16: return "avx512_core_bf16";
    case Isa::avx512_core_amx: return "avx512_core_amx";
  }
  return "unknown";
}

bool bit(unsigned value, int n) { return (value >> n) & 1u; }

/// The widest ISA this CPU offers with the OS saving its registers (cpuid leaves 1 and 7, XCR0).
Isa cpu_isa() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::sse2;
  const bool sse41 = bit(c, 19), avx = bit(c, 28), fma = bit(c, 12), osxsave = bit(c, 27);
  std::uint64_t xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<std::uint64_t>(hi) << 32) | lo;
  }
  const bool os_avx = (xcr0 & 0x6) == 0x6;        // SSE and AVX state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;   // plus opmask and the upper ZMM registers
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;  // tile config and tile data
  unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0;
  if (__get_cpuid_max(0, nullptr) >= 7) {
    unsigned subleaves = 0;  // leaf 7's highest subleaf
    __cpuid_count(7, 0, subleaves, b7, c7, d7);
    if (subleaves >= 1) {
      unsigned b71 = 0, c71 = 0, d71 = 0;
      __cpuid_count(7, 1, a71, b71, c71, d71);
    }
  }
  const bool avx2 = bit(b7, 5), avx512f = bit(b7, 16), avx512dq = bit(b7, 17), avx512bw = bit(b7, 30),
             avx512vl = bit(b7, 31), vnni = bit(c7, 11), bf16 = bit(a71, 5), amx_tile = bit(d7, 24),
             amx_bf16 = bit(d7, 22);
  const bool avx512_core = os_avx512 && avx512f && avx512dq && avx512bw && avx512vl;
  if (avx512_core && bf16 && os_amx && amx_tile && amx_bf16) return Isa::avx512_core_amx;
  if (avx512_core && bf16) return Isa::avx512_core_bf16;
  if (avx512_core && vnni) return Isa::avx512_core_vnni;
  if (avx512_core) return Isa::avx512_core;
  if (os_avx && avx && avx2 && fma) return Isa::avx2;
  if (os_avx && avx) return Isa::avx;
  if (sse41) return Isa::sse41;
  return Isa::sse2;
}

/// The CPU's brand string (cpuid leaves 0x80000002-4), spaces trimmed.
std::string cpu_name() {
  unsigned words[12] = {};
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000004) return "unknown CPU";
  for (unsigned leaf = 0; leaf < 3; ++leaf) {
    __get_cpuid(0x80000002 + leaf, &words[4 * leaf], &words[4 * leaf + 1], &words[4 * leaf + 2], &words[4 * leaf + 3]);
  }
  char text[49] = {};
  std::memcpy(text, words, 48);
  std::string name(text);
  name.erase(0, name.find_first_not_of(' '));
  name.erase(name.find_last_not_of(' ') + 1);
  return name.empty() ? "unknown CPU" : name;
}

/// oneDNN's effective ISA (the CPU's, or lower if DNNL_MAX_CPU_ISA caps it).
Isa gemm_isa() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return Isa::sse41;
    case dnnl_cpu_isa_avx: return Isa::avx;
    case dnnl_cpu_isa_avx2:
    case dnnl_cpu_isa_avx2_vnni: return Isa::avx2;
    case dnnl_cpu_isa_avx512_core: return Isa::avx512_core;
    case dnnl_cpu_isa_avx512_core_vnni: return Isa::avx512_core_vnni;
    case dnnl_cpu_isa_avx512_core_bf16: return Isa::avx512_core_bf16;
    case dnnl_cpu_isa_avx512_core_amx: return Isa::avx512_core_amx;
    default: return Isa::sse2;
  }
}

/// What this file (compiled with the library's flags, like every row kernel) may use.
Isa compiled_isa() {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
  return Isa::avx512_core;
#elif defined(__AVX2__) && defined(__FMA__)
  return Isa::avx2;
#elif defined(__AVX__)
  return Isa::avx;
#elif defined(__SSE4_1__)
  return Isa::sse41;
#else
  return Isa::sse2;
#endif
}

/// The vector width class of an ISA: what decides a kernel's speed (VNNI, BF16 and AMX matter
/// for reduced precision, not for fp32).
int width_class(Isa isa) {
  if (isa >= Isa::avx512_core) return 3;
  if (isa >= Isa::avx2) return 2;
  if (isa >= Isa::avx) return 1;
  return 0;
}

}  // namespace

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  const Isa cpu = cpu_isa(), gemm = gemm_isa(), rows = compiled_isa();
  info.cpu = cpu_name();
  info.cpu_isa = isa_name(cpu);
  const dnnl_version_t* version = dnnl_version();
  info.gemm_library = fmt::format("oneDNN {}.{}.{}", version->major, version->minor, version->patch);
  info.gemm_isa = isa_name(gemm);
  info.row_kernel_isa = isa_name(rows);
  info.threads = omp_get_max_threads();
  info.cpu_bf16 = cpu == Isa::avx512_core_bf16 || cpu == Isa::avx512_core_amx;
  info.int8_vnni = cpu == Isa::avx512_core_vnni || info.cpu_bf16;
  info.bf16_native = kernels::bf16_gemm_native();
  info.bf16 = info.bf16_native
                  ? "native (oneDNN's bf16 matmul, and the CPU's bf16 dot products for few rows): faster than fp32 "
                    "in training and decoding (batched decoding on several threads: about even)"
                  : info.cpu_bf16 ? "emulated (fp32 products of bf16-rounded inputs; oneDNN is capped below AVX512_BF16): "
                                    "slower than fp32"
                                  : "emulated (fp32 products of bf16-rounded inputs; the CPU has no AVX512_BF16 or AMX): "
                                    "slower than fp32";
  if (width_class(gemm) < width_class(cpu)) {
    info.warnings.push_back(fmt::format(
        "GEMMs run a slow fallback: oneDNN dispatches {} kernels on a CPU with {} (is DNNL_MAX_CPU_ISA set?)",
        isa_name(gemm), isa_name(cpu)));
  }
  if (width_class(rows) < width_class(cpu)) {
    info.warnings.push_back(fmt::format(
        "row kernels run a slow fallback: compiled for {} on a CPU with {} (build xgrad on this machine with "
        "-DXGRAD_NATIVE=ON)",
        isa_name(rows), isa_name(cpu)));
  }
  return info;
}

std::string RuntimeInfo::summary() const {
  return fmt::format("kernels: {} {}, row kernels {}, {} thread{} ({}, {})", gemm_library, gemm_isa, row_kernel_isa,
                     threads, threads == 1 ? "" : "s", cpu, cpu_isa);
}

std::string RuntimeInfo::precision_summary() const {
  return fmt::format("int8: {}; bf16: {}",
                     int8_vnni ? "VNNI dot products" : "u8 x s8 pairs summed in 16 bits (no VNNI), about 2x fp32", bf16);
}

std::ostream& operator<<(std::ostream& out, const RuntimeInfo& info) {
  out << info.summary();
  for (const std::string& warning : info.warnings) out << "\nwarning: " << warning;
  return out;
}

}  // namespace xgrad
