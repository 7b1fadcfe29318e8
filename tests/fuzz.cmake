# Fuzz targets for the files a user can hand xgrad: safetensors (and a checkpoint's state),
# corpus TSV, tokenizer.json and the seq2seq program's args.json. Each target is built with the
# project's seeded mutation driver (tests/fuzz/driver.cpp), or with libFuzzer when
# XGRAD_LIBFUZZER is on (Clang). ctest runs each for XGRAD_FUZZ_SECONDS; scripts/fuzz.sh runs
# one for longer.
set(XGRAD_FUZZ_SECONDS 10 CACHE STRING "Seconds each fuzz target runs under ctest")

set(XGRAD_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
add_library(xgrad_fuzz_scratch STATIC ${XGRAD_FUZZ_DIR}/scratch.cpp)
if(NOT XGRAD_LIBFUZZER)
  target_sources(xgrad_fuzz_scratch PRIVATE ${XGRAD_FUZZ_DIR}/driver.cpp)
endif()
target_link_libraries(xgrad_fuzz_scratch PUBLIC xgrad::xgrad)

# fuzz_<name>: target source, seeds (files or folders) and dictionary.
function(xgrad_fuzz_target name)
  cmake_parse_arguments(FUZZ "" "DICT" "SEEDS;LIBS" ${ARGN})
  set(target fuzz_${name})
  add_executable(${target} ${XGRAD_FUZZ_DIR}/fuzz_${name}.cpp)
  target_link_libraries(${target} PRIVATE xgrad_fuzz_scratch ${FUZZ_LIBS})
  set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  # The seeds, files and folders, gathered into one folder of the build tree.
  set(seed_dir ${CMAKE_BINARY_DIR}/fuzz/seeds/${name})
  file(MAKE_DIRECTORY ${seed_dir})
  foreach(seed IN LISTS FUZZ_SEEDS)
    if(IS_DIRECTORY ${seed})
      file(GLOB files ${seed}/*)
      file(COPY ${files} DESTINATION ${seed_dir})
    else()
      file(COPY ${seed} DESTINATION ${seed_dir})
    endif()
  endforeach()
  if(XGRAD_LIBFUZZER)
    # libFuzzer writes what it finds into the first folder: a corpus of the build tree.
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz/corpus/${name})
    set(run_args -max_total_time=${XGRAD_FUZZ_SECONDS} -dict=${FUZZ_DICT} ${CMAKE_BINARY_DIR}/fuzz/corpus/${name}
                 ${seed_dir})
  else()
    set(run_args --seconds ${XGRAD_FUZZ_SECONDS} --seed 1 --dict ${FUZZ_DICT} ${seed_dir})
  endif()
  add_test(NAME fuzz.${name} COMMAND ${target} ${run_args})
  set_tests_properties(fuzz.${name} PROPERTIES TIMEOUT 600 ENVIRONMENT OMP_NUM_THREADS=1)
endfunction()

set(seeds ${XGRAD_FUZZ_DIR}/seeds)
xgrad_fuzz_target(safetensors DICT ${XGRAD_FUZZ_DIR}/safetensors.dict
  SEEDS ${seeds}/safetensors ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/small_module.safetensors
        ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/reference_writer.safetensors ${CMAKE_CURRENT_SOURCE_DIR}/fixtures/xgrad_saved_tiny_reference.safetensors)
xgrad_fuzz_target(tsv DICT ${XGRAD_FUZZ_DIR}/tsv.dict SEEDS ${seeds}/tsv)
xgrad_fuzz_target(tokenizer DICT ${XGRAD_FUZZ_DIR}/tokenizer.dict SEEDS ${seeds}/tokenizer)
if(TARGET seq2seq_parts)
  xgrad_fuzz_target(args DICT ${XGRAD_FUZZ_DIR}/args.dict SEEDS ${seeds}/args LIBS seq2seq_parts)
endif()
