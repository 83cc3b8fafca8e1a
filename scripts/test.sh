#!/usr/bin/env bash
# The test command: installs what is missing, then builds dyt's tests in build/
# (for this machine's CPU, -march=native) and runs them with ctest.
#   scripts/test.sh [EXTRA_CMAKE_ARGS...]
#   DYT_BUILD_DIR  build folder (default <repo>/build);  DYT_JOBS  parallel jobs (default 2)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir="${DYT_BUILD_DIR:-$DYT_ROOT/build}"

say "dependencies"
run "$DYT_ROOT/scripts/install-deps.sh"

say "configure and build the tests in $build_dir"
dyt_build "$build_dir" \
  -DCMAKE_BUILD_TYPE=Release \
  -DDYT_BUILD_TESTS=ON \
  -DDYT_BUILD_EXAMPLES=OFF \
  -DDYT_BUILD_BENCHMARKS=OFF \
  -DDYT_SIMD_ARCH=native \
  "$@"

say "run the tests"
dyt_ctest "$build_dir"
