# `cmake --install` puts the headers under include/xgrad/ and an exported package config under
# lib/cmake/xgrad/, so that a user's project can do find_package(xgrad) and link xgrad::xgrad.
include(CMakePackageConfigHelpers)

foreach(module IN LISTS XGRAD_MODULES)
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/${module}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/xgrad/${module}
          FILES_MATCHING PATTERN "*.hpp")
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/xgrad.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/xgrad)

install(TARGETS xgrad EXPORT xgradTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT xgradTargets NAMESPACE xgrad:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xgrad)

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/xgradConfig.cmake.in
  ${CMAKE_BINARY_DIR}/xgradConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xgrad)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/xgradConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/xgradConfig.cmake ${CMAKE_BINARY_DIR}/xgradConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/xgrad)
