# Tests of distributed/ that need several processes: built from tests/distributed/mpi_*.cpp and
# run by mpirun with 2 ranks (oversubscribed where there are fewer cores; allowed as root).
set(XGRAD_MPIEXEC ${MPIEXEC_EXECUTABLE} --oversubscribe --allow-run-as-root --bind-to none)
file(GLOB XGRAD_MPI_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/distributed/mpi_*.cpp)
foreach(source IN LISTS XGRAD_MPI_TESTS)
  get_filename_component(name ${source} NAME_WE)
  add_executable(distributed_${name} ${source})
  target_link_libraries(distributed_${name} PRIVATE doctest::doctest xgrad::xgrad)
  target_include_directories(distributed_${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  set_target_properties(distributed_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME distributed.${name} COMMAND ${XGRAD_MPIEXEC} -np 2 $<TARGET_FILE:distributed_${name}>)
  set_tests_properties(distributed.${name} PROPERTIES TIMEOUT 300 ENVIRONMENT OMP_NUM_THREADS=1)
endforeach()

# A rank that throws or is killed ends the whole job with a message naming it.
add_executable(distributed_fail_rank ${CMAKE_CURRENT_SOURCE_DIR}/distributed/fail_rank.cpp)
target_link_libraries(distributed_fail_rank PRIVATE xgrad::xgrad)
set_target_properties(distributed_fail_rank PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
foreach(mode IN ITEMS throw kill)
  add_test(NAME distributed.rank_${mode}s
    COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DPROGRAM=$<TARGET_FILE:distributed_fail_rank>
      -DMODE=${mode} -P ${CMAKE_CURRENT_SOURCE_DIR}/distributed/expect_rank_failure.cmake)
  set_tests_properties(distributed.rank_${mode}s PROPERTIES TIMEOUT 120)
endforeach()

# The seq2seq program trained by 2 ranks resumes exactly.
if(TARGET seq2seq)
  add_test(NAME distributed.seq2seq_resume
    COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DPROGRAM=$<TARGET_FILE:seq2seq>
      -DWORK_DIR=${CMAKE_BINARY_DIR}/seq2seq_mpi_resume -P ${CMAKE_CURRENT_SOURCE_DIR}/distributed/seq2seq_resume.cmake)
  set_tests_properties(distributed.seq2seq_resume PROPERTIES TIMEOUT 600 ENVIRONMENT OMP_NUM_THREADS=1)
endif()

# 2 ranks take the batches, and give the losses, of 1 process with --accumulate 2.
if(TARGET seq2seq)
  add_test(NAME distributed.seq2seq_two_ranks_equal_accumulate
    COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DPROGRAM=$<TARGET_FILE:seq2seq>
      -DWORK_DIR=${CMAKE_BINARY_DIR}/seq2seq_mpi_accumulate
      -P ${CMAKE_CURRENT_SOURCE_DIR}/distributed/seq2seq_accumulate.cmake)
  set_tests_properties(distributed.seq2seq_two_ranks_equal_accumulate PROPERTIES TIMEOUT 600)
endif()

# Under LeakSanitizer, Open MPI's components (loaded and unloaded with dlopen) leave allocations
# that cannot be traced to a library to suppress: leak checking is off in the processes mpirun
# starts. The rest of AddressSanitizer stays on there, and the world-of-one tests check xgrad's
# own code for leaks.
if(XGRAD_SANITIZE)
  get_property(all_tests DIRECTORY PROPERTY TESTS)
  foreach(test IN LISTS all_tests)
    if(test MATCHES "^distributed\\." AND NOT test STREQUAL "distributed.test_world_of_one")
      set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
    endif()
  endforeach()
endif()
