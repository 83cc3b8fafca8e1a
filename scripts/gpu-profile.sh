#!/usr/bin/env bash
# Runs ON the GPU machine (like scripts/gpu-run.sh): Nsight Compute on one launch
# of each named benchmark's kernels, to see what bounds it (throughput against
# the memory ceiling, warp stall reasons, registers and occupancy).
#   scripts/gpu-profile.sh [BINARY] BENCHMARK...     e.g. LayerNorm/fwd/bf16/16384x4096
#   BINARY defaults to build-cuda/bin/cuda/bench_cuda; a path ending in bench_cuda* is taken as one.
# ncu gets --clock-control none (the device tool's METHOD.md: leave the clocks alone).
# Writes $OUT/ncu-<n>.txt per benchmark and prints the key lines.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${DYT_GPU_BUILD_DIR:-build-cuda}"
bin="$build/bin/cuda/bench_cuda"
if [[ "${1:-}" == */bench_cuda* ]]; then bin=$1; shift; fi
OUT="${OUT:-$PWD/$build/out}"
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
n=0
for name in "$@"; do
  n=$((n + 1))
  log="$OUT/ncu-$n.txt"
  echo "==> $name ($bin)" | tee "$log"
  # Skip the warm-up launches; profile the first kernel launch after them
  # (backward: the row kernel, not the reduction of its partials).
  ncu --clock-control none --launch-skip 4 --launch-count 1 -k 'regex:staged|loop' \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
    --section MemoryWorkloadAnalysis --section SchedulerStats \
    "$bin" --benchmark_filter="^${name}(/|$)" --benchmark_min_time=0.001 --benchmark_repetitions=1 >>"$log" 2>&1
  grep -E "forward_|backward_|Memory Throughput|DRAM Throughput|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Issue Slots Busy|Warp Cycles Per Issued|Eligible Warps|No Eligible|Stall|L1/TEX Hit|L2 Hit" "$log" | head -n 40
done
