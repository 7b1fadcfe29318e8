# Run by ctest in script mode: PROGRAM STEPS WORK_DIR in an emptied WORK_DIR, so that a program
# that resumes from its run folder trains from the start on every test run; its exit code is
# the test's.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${PROGRAM} ${STEPS} ${WORK_DIR} RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} ${STEPS} ${WORK_DIR} exited with ${status}")
endif()
