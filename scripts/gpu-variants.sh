#!/usr/bin/env bash
# Runs ON the GPU machine: several builds of bench_cuda (variants of a kernel
# choice, built here with different -D flags) in one call, so their numbers
# compare on one card, then one table of GB/s and copy ratios per variant.
#   scripts/gpu-variants.sh NAME:FILTER [NAME:FILTER...]
#     NAME    build-cuda/bin/cuda/bench_cuda_NAME
#     FILTER  a --benchmark_filter regex (the copy baselines run with the first variant)
# Writes $OUT/variant-NAME.json and prints bench/variants_table.py's table.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${DYT_GPU_BUILD_DIR:-build-cuda}"
OUT="${OUT:-$PWD/$build/out}"
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
jsons=()
for spec in "$@"; do
  name=${spec%%:*}
  filter=${spec#*:}
  echo "==> $name: $filter ($(date -u +%H:%M:%S))"
  "$build/bin/cuda/bench_cuda_$name" --benchmark_filter="$filter" --benchmark_repetitions="${DYT_BENCH_REPS:-5}" \
    --benchmark_report_aggregates_only=true --benchmark_min_time=0.05 \
    --benchmark_out="$OUT/variant-$name.json" --benchmark_out_format=json >"$OUT/variant-$name.log" 2>&1 ||
    { echo "$name failed"; tail -n 5 "$OUT/variant-$name.log"; }
  jsons+=("$OUT/variant-$name.json")
done
python3 bench/variants_table.py "${jsons[@]}"
