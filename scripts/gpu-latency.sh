#!/usr/bin/env bash
# Runs ON the GPU machine: Nsight Compute on one launch of each named
# benchmark's row kernel at a decode size, caches flushed (ncu's default) and
# not (--cache-control none), with the instruction count and the warp stall
# reasons, to see what one row's latency is made of.
#   scripts/gpu-latency.sh BINARY BENCHMARK...   e.g. LayerNorm/fwd/bf16/1x4096
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=$1
shift
build="${DYT_GPU_BUILD_DIR:-build-cuda}"
OUT="${OUT:-$PWD/$build/out}"
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
metrics=gpu__time_duration.sum,sm__cycles_elapsed.max,smsp__inst_executed.sum,smsp__warps_launched.sum
n=0
for name in "$@"; do
  for cache in all none; do
    n=$((n + 1))
    log="$OUT/lat-$n.txt"
    echo "==> $name, cache-control $cache" | tee "$log"
    ncu --clock-control none --cache-control "$cache" --launch-skip 4 --launch-count 1 -k 'regex:staged|loop' \
      --metrics "$metrics" --section WarpStateStats \
      "$bin" --benchmark_filter="^${name}(/|$)" --benchmark_min_time=0.001 --benchmark_repetitions=1 >>"$log" 2>&1
    grep -E "forward_|backward_|gpu__time|sm__cycles|smsp__inst|smsp__warps|Stall|Warp Cycles Per Issued" "$log" | head -n 30
  done
done
