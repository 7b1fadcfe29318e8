# A 2-rank seq2seq run stopped at step 20 and resumed to step 40 logs the same training lines,
# digit for digit, as a 2-rank run of 40 steps in one go (every rank's dropout stream and the
# shared data position are in the checkpoint). MPIEXEC, PROGRAM, WORK_DIR.
set(mpirun ${MPIEXEC} --oversubscribe --allow-run-as-root -np 2 ${PROGRAM} train)
set(recipe --task reverse --model tiny --train-size 2000 --valid-size 50 --test-size 0 --valid-every 20
  --valid-decode 20 --batch-tokens 1024)
include(${CMAKE_CURRENT_LIST_DIR}/run_checked.cmake)

run(${mpirun} ${recipe} --steps 40 --run-dir ${WORK_DIR}/whole)
run(${mpirun} ${recipe} --steps 20 --run-dir ${WORK_DIR}/split)
run(${mpirun} --resume ${WORK_DIR}/split --steps 40)

file(STRINGS ${WORK_DIR}/whole/metrics.jsonl whole REGEX "\"kind\":\"train\"")
file(STRINGS ${WORK_DIR}/split/metrics.jsonl split REGEX "\"kind\":\"train\"")
# Each line's peak memory is the process's own: compared are the numbers the training made.
list(TRANSFORM whole REPLACE "\"peak_rss_mib\":[0-9.e+]+," "")
list(TRANSFORM split REPLACE "\"peak_rss_mib\":[0-9.e+]+," "")
list(LENGTH whole n)
if(NOT n EQUAL 40)
  message(FATAL_ERROR "the uninterrupted run logged ${n} training steps, expected 40")
endif()
if(NOT "${whole}" STREQUAL "${split}")
  message(FATAL_ERROR "the resumed 2-rank run differs from the uninterrupted one:\n${whole}\n---\n${split}")
endif()
message(STATUS "40 training lines equal, digit for digit")
