# Run by ctest in script mode: examples/custom_training_loop stopped after 20 steps and run again
# to 40 must print the step-40 line (loss, gradient norm, learning rate, exact match) of one run
# of 40 steps, digit for digit. The program exits non-zero (40 steps do not learn to reverse):
# only its output is judged.
file(REMOVE_RECURSE ${WORK_DIR})
function(run steps folder out)
  execute_process(COMMAND ${PROGRAM} ${steps} ${WORK_DIR}/${folder} OUTPUT_VARIABLE text ERROR_VARIABLE err)
  set(${out} "${text}" PARENT_SCOPE)
endfunction()
run(20 split first)
run(40 split resumed)
run(40 whole whole)
if(NOT resumed MATCHES "resuming ${WORK_DIR}/split at step 21")
  message(FATAL_ERROR "the second run did not resume:\n${resumed}")
endif()
string(REGEX MATCH "step   40  loss [^\n]*" resumed_line "${resumed}")
string(REGEX MATCH "step   40  loss [^\n]*" whole_line "${whole}")
if(NOT resumed_line OR NOT resumed_line STREQUAL whole_line)
  message(FATAL_ERROR "resumed: '${resumed_line}'\nwhole:   '${whole_line}'")
endif()
message(STATUS "resumed at step 21, equal at step 40: ${whole_line}")
