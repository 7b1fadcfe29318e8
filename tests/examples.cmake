# The examples are programs users read first: build them and run them as tests. Each exits
# non-zero when it fails to learn what it sets out to learn.
foreach(example IN ITEMS regression custom_layer custom_training_loop)
  if(TARGET ${example} AND example STREQUAL "custom_training_loop")
    # It resumes from its run folder: an emptied one each time, so that every run trains.
    add_test(NAME examples.${example}
      COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:${example}> -DSTEPS=1500
        -DWORK_DIR=${CMAKE_BINARY_DIR}/custom_training_loop_run
        -P ${CMAKE_CURRENT_SOURCE_DIR}/examples/run_in_fresh_folder.cmake)
  elseif(TARGET ${example})
    add_test(NAME examples.${example} COMMAND ${example})
  endif()
  if(TARGET ${example})
    # One thread: the same numbers on every machine, so the result does not depend on the core count.
    set_tests_properties(examples.${example} PROPERTIES TIMEOUT 600 ENVIRONMENT OMP_NUM_THREADS=1)
  endif()
  if(TARGET ${example} AND example STREQUAL "custom_training_loop")
    # 1,500 steps to show it learns: the label lets the sanitized suite leave out this long run
    # (custom_training_loop_resume runs the same code for 40 steps there).
    set_tests_properties(examples.${example} PROPERTIES LABELS learning)
  endif()
endforeach()

# The custom loop's run folder resumes exactly: 20 steps then on to 40 equal 40 in one go.
if(TARGET custom_training_loop)
  add_test(NAME examples.custom_training_loop_resume
    COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:custom_training_loop>
      -DWORK_DIR=${CMAKE_BINARY_DIR}/custom_training_loop_resume
      -P ${CMAKE_CURRENT_SOURCE_DIR}/examples/custom_training_loop_resume.cmake)
  set_tests_properties(examples.custom_training_loop_resume PROPERTIES TIMEOUT 600 ENVIRONMENT OMP_NUM_THREADS=1)
endif()
