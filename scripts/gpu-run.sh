#!/usr/bin/env bash
# Runs ON the GPU machine, from the repository root, after scripts/gpu-build.sh
# built build-cuda/ here and the build travelled along:
#   scripts/gpu-run.sh [all | STAGE...]     STAGE: tests sanitize bench peers table examples
# Logs and results go to $OUT (default build-cuda/out), at most 8 files:
#   gpu.txt tests.log sanitizers.log bench.json bench.log peers.json table.md examples.log
#   DYT_GPU_BUILD_DIR   the build folder (default build-cuda)
#   DYT_BENCH_FILTER    --benchmark_filter for bench_cuda (default: all)
#   DYT_BENCH_REPS      repetitions, median reported (default 5)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${DYT_GPU_BUILD_DIR:-build-cuda}"
bin="$build/bin/cuda"
OUT="${OUT:-$PWD/$build/out}"  # the device tool sets OUT; elsewhere inside the ignored build folder
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1

stages=("$@")
if ((${#stages[@]} == 0)) || [[ "${stages[0]}" == all ]]; then stages=(tests sanitize bench peers table examples); fi
status=0
note() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

for stage in "${stages[@]}"; do
  case "$stage" in
    tests)
      note "GPU tests"
      "$bin/dyt_test_cuda" 2>&1 | tee "$OUT/tests.log" | tail -n 25 || status=1
      ;;
    sanitize)
      # The sanitizers slow every launch by 10-100x: DYT_CUDA_TEST_QUICK keeps
      # five shapes per layer and type and skips the > 2^31-element test.
      note "compute-sanitizer (DYT_CUDA_TEST_QUICK=1)"
      : >"$OUT/sanitizers.log"
      for tool in memcheck racecheck initcheck synccheck; do
        note "$tool" | tee -a "$OUT/sanitizers.log"
        DYT_CUDA_TEST_QUICK=1 compute-sanitizer --tool "$tool" --error-exitcode 86 "$bin/dyt_test_cuda" \
          >>"$OUT/sanitizers.log" 2>&1
        rc=$?
        echo "$tool: exit $rc" | tee -a "$OUT/sanitizers.log"
        grep -E "ERROR SUMMARY|test cases:" "$OUT/sanitizers.log" | tail -n 2
        ((rc == 0)) || status=1
      done
      ;;
    bench)
      note "benchmark"
      "$bin/bench_cuda" --benchmark_repetitions="${DYT_BENCH_REPS:-5}" --benchmark_report_aggregates_only=true \
        --benchmark_min_time=0.05 --benchmark_filter="${DYT_BENCH_FILTER:-.}" \
        --benchmark_out="$OUT/bench.json" --benchmark_out_format=json >"$OUT/bench.log" 2>&1 || status=1
      grep -E "median" "$OUT/bench.log" | tail -n 4
      ;;
    peers)
      note "peers (PyTorch, torch.compile, Liger-Kernel if installed)"
      if [[ -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
          export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
      fi
      python3 bench/peers_gpu.py --out "$OUT/peers.json" || status=1
      ;;
    table)
      note "table"
      python3 bench/gpu_table.py "$OUT/bench.json" "$OUT/peers.json" --gpu "$OUT/gpu.txt" | tee "$OUT/table.md" || status=1
      ;;
    examples)
      note "examples: paper_efficiency (the paper's Table 7 on this GPU)"
      "$bin/paper_efficiency" 2>&1 | tee "$OUT/examples.log" || status=1
      ;;
    *) echo "gpu-run.sh: unknown stage '$stage'" >&2; status=2 ;;
  esac
done
exit $status
