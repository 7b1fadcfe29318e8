// The main of the tests that run under mpirun: MPI is initialised before the first test case and
// finalised after the last, and every rank runs every case (collectives need them all). A rank
// whose checks fail exits non-zero, which ends the job with a failure.
#pragma once

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <xgrad/distributed/distributed.hpp>

int main(int argc, char** argv) {
  xgrad::distributed::Environment world(argc, argv);
  doctest::Context context(argc, argv);
  if (xgrad::distributed::rank() != 0) context.setOption("minimal", true);  // one report, rank 0's
  return context.run();
}
