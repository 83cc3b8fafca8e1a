#!/usr/bin/env bash
# The main job: installs what is missing, builds dyt's examples and benchmarks in
# build-run/ (for this machine's CPU, -march=native), then runs every example and
# every benchmark, each benchmark briefly.
#   scripts/run.sh [EXTRA_CMAKE_ARGS...]
#   DYT_RUN_BUILD_DIR   build folder (default <repo>/build-run)
#   DYT_BENCH_MIN_TIME  seconds per benchmark (default 0.05);  DYT_JOBS  parallel jobs (default 2)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir="${DYT_RUN_BUILD_DIR:-$DYT_ROOT/build-run}"
min_time="${DYT_BENCH_MIN_TIME:-0.05}"

say "dependencies"
run "$DYT_ROOT/scripts/install-deps.sh"

say "configure and build the examples and benchmarks in $build_dir"
dyt_build "$build_dir" \
  -DCMAKE_BUILD_TYPE=Release \
  -DDYT_BUILD_TESTS=OFF \
  -DDYT_BUILD_EXAMPLES=ON \
  -DDYT_BUILD_BENCHMARKS=ON \
  -DDYT_SIMD_ARCH=native \
  "$@"

# The programs CMake built for one folder (examples, bench): their paths, a line
# each, in <build>/bin/<folder>.txt.
programs_of() {
  local list="$build_dir/bin/$1.txt"
  if [[ -f "$list" ]]; then
    grep -v '^$' "$list" || true # grep fails on an empty list
  fi
}

mapfile -t examples < <(programs_of examples)
if ((${#examples[@]} == 0)); then
  say "no examples yet"
fi
for example in "${examples[@]}"; do
  say "example: $(basename "$example")"
  run "$example"
done

mapfile -t benchmarks < <(programs_of bench)
if ((${#benchmarks[@]} == 0)); then
  say "no benchmarks yet"
fi
for benchmark in "${benchmarks[@]}"; do
  say "benchmark: $(basename "$benchmark")"
  run "$benchmark" --benchmark_min_time="$min_time"
done
