# Runs fail_rank under mpirun with 2 ranks (MPIEXEC, PROGRAM, MODE) and checks that the job ends
# by itself within a minute, fails, and names rank 1.
execute_process(
  COMMAND ${MPIEXEC} --oversubscribe --allow-run-as-root --bind-to none -np 2 ${PROGRAM} ${MODE}
  TIMEOUT 60 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "exit: ${rc}\n${out}${err}")
if(rc MATCHES "timeout")
  message(FATAL_ERROR "the job hung after rank 1 failed (${MODE})")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "the job succeeded though rank 1 failed (${MODE})")
endif()
if(NOT "${out}${err}" MATCHES "rank 1")
  message(FATAL_ERROR "the job's messages do not name rank 1 (${MODE})")
endif()
