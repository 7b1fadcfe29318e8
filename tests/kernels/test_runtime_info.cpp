// runtime_info: what it reports of the kernels on this machine, and the warning for a GEMM
// library held below the CPU's ISA (oneDNN capped by DNNL_MAX_CPU_ISA, set before its first use).
#include <doctest/doctest.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

TEST_CASE("a GEMM library capped below the CPU's ISA is reported as a slow fallback") {
  // The first thing this program asks of oneDNN: the cap applies from here on.
  ::setenv("DNNL_MAX_CPU_ISA", "SSE41", 1);
  const RuntimeInfo info = runtime_info();
  CHECK(info.gemm_isa == "sse41");
  std::ostringstream text;
  text << info;
  if (info.cpu_isa == "sse2" || info.cpu_isa == "sse41") {
    CHECK(info.warnings.empty());  // nothing wider to fall back from
  } else {
    REQUIRE(info.warnings.size() >= 1);
    CHECK(info.warnings[0].find("GEMMs run a slow fallback") != std::string::npos);
    CHECK(info.warnings[0].find(info.cpu_isa) != std::string::npos);
    CHECK(text.str().find("\nwarning: GEMMs run a slow fallback") != std::string::npos);
  }
}

TEST_CASE("the summary names the GEMM library, the ISAs, the threads and the CPU") {
  const int previous = get_num_threads();
  set_num_threads(1);
  RuntimeInfo info = runtime_info();
  CHECK(info.threads == 1);
  CHECK(info.summary().rfind("kernels: oneDNN ", 0) == 0);
  CHECK(info.summary().find(", 1 thread (") != std::string::npos);
  CHECK(info.summary().find(info.cpu) != std::string::npos);
  CHECK(info.summary().find("row kernels " + info.row_kernel_isa) != std::string::npos);
  set_num_threads(2);
  CHECK(runtime_info().summary().find(", 2 threads (") != std::string::npos);
  set_num_threads(previous);
  CHECK_FALSE(info.cpu.empty());
  CHECK_FALSE(info.gemm_library.empty());
}
