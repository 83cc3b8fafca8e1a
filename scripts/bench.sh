#!/usr/bin/env bash
# The CPU benchmark: installs what is missing (oneDNN included), builds
# bench_cpu in build-bench/ (Release, -march=native), runs it with oneDNN on one
# thread (OMP_NUM_THREADS=1) and prints bench/table.py's table: every layer,
# pass, type and shape next to memcpy and the best peer, then the targets.
#   scripts/bench.sh [GOOGLE_BENCHMARK_FLAGS...]   e.g. --benchmark_filter=/f32/
#   DYT_BENCH_BUILD_DIR  build folder (default <repo>/build-bench)
#   DYT_BENCH_JSON       where the raw results go (default <build>/bench-cpu.json)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir="${DYT_BENCH_BUILD_DIR:-$DYT_ROOT/build-bench}"
json="${DYT_BENCH_JSON:-$build_dir/bench-cpu.json}"

say "dependencies"
run "$DYT_ROOT/scripts/install-deps.sh" --bench

say "configure and build the CPU benchmark in $build_dir"
run cmake -S "$DYT_ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DDYT_BUILD_TESTS=OFF \
  -DDYT_BUILD_EXAMPLES=OFF -DDYT_BUILD_BENCHMARKS=ON -DDYT_SIMD_ARCH=native
run cmake --build "$build_dir" --target dyt_bench_bench_cpu --parallel "$DYT_JOBS"

say "run (benchmark log on stderr, table on stdout)"
run python3 "$DYT_ROOT/bench/table.py" "$build_dir/bin/bench/bench_cpu" --json "$json" "$@"
