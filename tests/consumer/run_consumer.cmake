# Builds and runs tests/consumer against dyt the way a user would (ctest runs
# this script with cmake -P):
#   -DDYT_CONSUMER_MODE=find_package       install the dyt build tree to a scratch
#                                          prefix, then find_package(dyt) from there
#   -DDYT_CONSUMER_MODE=add_subdirectory   add_subdirectory(<dyt source tree>)
#   -DDYT_CONSUMER_SETTINGS=<file>         compiler, flags, toolchain and paths of the
#                                          dyt build (tests/CMakeLists.txt writes it)
#   -DDYT_CONSUMER_CONFIG=<config>         the build configuration
cmake_minimum_required(VERSION 3.16...3.28)

include("${DYT_CONSUMER_SETTINGS}")

set(_work "${DYT_CONSUMER_WORK_DIR}/${DYT_CONSUMER_MODE}")
set(_config "${DYT_CONSUMER_CONFIG}")

function(consumer_step what)
  message(STATUS "consumer.${DYT_CONSUMER_MODE}: ${what}")
  execute_process(COMMAND ${ARGN} COMMAND_ECHO STDOUT RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer.${DYT_CONSUMER_MODE}: ${what} failed (${rc})")
  endif()
endfunction()

# Start from nothing, as a fresh user project would.
file(REMOVE_RECURSE "${_work}")

set(_configure_args -S "${DYT_CONSUMER_SOURCE_DIR}" -B "${_work}/build" -G "${CMAKE_GENERATOR}")
if(CMAKE_MAKE_PROGRAM)
  list(APPEND _configure_args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
endif()
if(CMAKE_TOOLCHAIN_FILE)
  list(APPEND _configure_args "-DCMAKE_TOOLCHAIN_FILE=${CMAKE_TOOLCHAIN_FILE}")
else()
  list(APPEND _configure_args "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}")
endif()
set(_config_args "")
set(_ctest_config_args "")
if(_config)
  string(TOUPPER "${_config}" _config_upper)
  list(APPEND _configure_args "-DCMAKE_BUILD_TYPE=${_config}")
  set(_config_args --config "${_config}")
  set(_ctest_config_args -C "${_config}")
endif()
foreach(_var IN ITEMS CMAKE_CXX_COMPILER_LAUNCHER CMAKE_CXX_FLAGS CMAKE_CXX_FLAGS_${_config_upper}
                      CMAKE_EXE_LINKER_FLAGS xsimd_DIR)
  if(NOT "${${_var}}" STREQUAL "")
    list(APPEND _configure_args "-D${_var}=${${_var}}")
  endif()
endforeach()

if(DYT_CONSUMER_MODE STREQUAL "find_package")
  set(_prefix "${_work}/prefix")
  consumer_step("install dyt to ${_prefix}"
    "${CMAKE_COMMAND}" --install "${DYT_BINARY_DIR}" --prefix "${_prefix}" ${_config_args})
  if(CMAKE_CROSSCOMPILING)
    # A cross toolchain confines package searches to its target root.
    list(APPEND _configure_args "-Ddyt_DIR=${_prefix}/${DYT_INSTALL_CMAKEDIR}")
  else()
    list(APPEND _configure_args "-DCMAKE_PREFIX_PATH=${_prefix}")
  endif()
elseif(DYT_CONSUMER_MODE STREQUAL "add_subdirectory")
  list(APPEND _configure_args
    "-DDYT_CONSUMER_DYT_SOURCE_DIR=${DYT_SOURCE_DIR}"
    "-DDYT_USE_XSIMD=${DYT_USE_XSIMD}")
else()
  message(FATAL_ERROR "DYT_CONSUMER_MODE must be find_package or add_subdirectory, not '${DYT_CONSUMER_MODE}'")
endif()

consumer_step("configure" "${CMAKE_COMMAND}" ${_configure_args})
consumer_step("build" "${CMAKE_COMMAND}" --build "${_work}/build" ${_config_args})
# ctest in the consumer's tree runs the app, through the emulator when cross-compiling.
consumer_step("run" "${CMAKE_COMMAND}" -E chdir "${_work}/build"
  "${CMAKE_CTEST_COMMAND}" --output-on-failure ${_ctest_config_args})
