# The examples are programs users read first: build them and run them as tests. Each exits
# non-zero when it fails to learn what it sets out to learn.
foreach(example IN ITEMS regression custom_layer custom_training_loop)
  if(TARGET ${example})
    add_test(NAME examples.${example} COMMAND ${example})
    set_tests_properties(examples.${example} PROPERTIES TIMEOUT 300)
  endif()
endforeach()
