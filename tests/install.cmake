# `cmake --install` into a scratch prefix, then build and run a project outside the tree against
# the installed package with find_package(xgrad), built by the same compiler as the library (a
# static library built by Clang needs Clang's OpenMP runtime, which g++ does not link).
set(XGRAD_INSTALL_TEST_DIR ${CMAKE_BINARY_DIR}/install_test)
add_test(NAME install.find_package
  COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${CMAKE_BINARY_DIR}
    -DCONSUMER_DIR=${CMAKE_CURRENT_SOURCE_DIR}/install_consumer
    -DWORK_DIR=${XGRAD_INSTALL_TEST_DIR}
    -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DC_COMPILER=${CMAKE_C_COMPILER}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/install_consumer/run.cmake)
set_tests_properties(install.find_package PROPERTIES TIMEOUT 600)
