# Cross-compiles for 64-bit ARM Linux (NEON) with Debian's g++-aarch64-linux-gnu;
# ctest runs the resulting tests under qemu-user. Debian packages:
# g++-aarch64-linux-gnu qemu-user (scripts/install-deps.sh --cross).
#
#   cmake -S . -B build-aarch64 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(_dyt_triple aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${_dyt_triple}-gcc)
set(CMAKE_CXX_COMPILER ${_dyt_triple}-g++)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/${_dyt_triple})

# Libraries and headers come from the target's root only; build tools from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${_dyt_triple})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# xsimd, doctest and Eigen are header-only and the same for every architecture,
# so the host's Debian packages serve the target too. But they live in the
# host's /usr/include, which must never reach the cross compiler (it would
# shadow the target's C library headers). So:
#  - each package's host CMake config is named directly (the search above is
#    confined to the target's root); CMake treats /usr/include as an implicit
#    directory and passes no flag for it (Eigen's /usr/include/eigen3 holds
#    only Eigen, so its flag is harmless);
#  - xsimd/ and doctest/ are reached through a folder of symlinks in the build
#    tree, searched after every other include directory.
foreach(_dyt_pkg IN ITEMS xsimd doctest Eigen3)
  if(NOT ${_dyt_pkg}_DIR)
    string(TOLOWER "${_dyt_pkg}" _dyt_pkg_lower)
    file(GLOB _dyt_pkg_configs
         "/usr/lib/cmake/${_dyt_pkg}/${_dyt_pkg}Config.cmake"
         "/usr/lib/*/cmake/${_dyt_pkg}/${_dyt_pkg}Config.cmake"
         "/usr/share/cmake/${_dyt_pkg}/${_dyt_pkg}Config.cmake"
         "/usr/share/${_dyt_pkg_lower}/cmake/${_dyt_pkg}Config.cmake")
    if(_dyt_pkg_configs)
      list(GET _dyt_pkg_configs 0 _dyt_pkg_config)
      get_filename_component(_dyt_pkg_dir "${_dyt_pkg_config}" DIRECTORY)
      set(${_dyt_pkg}_DIR "${_dyt_pkg_dir}" CACHE PATH "Host CMake package of ${_dyt_pkg} (header-only)")
    endif()
  endif()
endforeach()

set(_dyt_host_headers "${CMAKE_BINARY_DIR}/${_dyt_triple}-host-headers")
get_property(_dyt_in_try_compile GLOBAL PROPERTY IN_TRY_COMPILE)
if(NOT _dyt_in_try_compile)
  foreach(_dyt_header_dir IN ITEMS xsimd doctest)
    if(IS_DIRECTORY "/usr/include/${_dyt_header_dir}")
      file(MAKE_DIRECTORY "${_dyt_host_headers}")
      file(CREATE_LINK "/usr/include/${_dyt_header_dir}" "${_dyt_host_headers}/${_dyt_header_dir}" SYMBOLIC)
    endif()
  endforeach()
endif()
set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES "${_dyt_host_headers}")
