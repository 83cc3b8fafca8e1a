#!/usr/bin/env bash
# Runs ON the GPU machine, from the repository root, after scripts/gpu-build.sh
# built build-cuda/ here and the build travelled along:
#   scripts/gpu-run.sh [all | STAGE...]     STAGE: tests sanitize sweep bench peers table examples
# Logs and results go to $OUT (default build-cuda/out), at most 8 files (what the
# device tool brings back):
#   gpu.txt tests.log sanitizers.log sweep.log bench.json bench.log peers.json table.md
# (examples appends to bench.log).
#   DYT_GPU_BUILD_DIR   the build folder (default build-cuda)
#   DYT_BENCH_FILTER    --benchmark_filter for bench_cuda (default: all)
#   DYT_BENCH_REPS      repetitions, median reported (default 5)
#   DYT_SANITIZE_TESTS  a doctest -tc filter for the sanitize stage (default: every test case)
#   DYT_SWEEP_CASES     sweep cases of the plain sweep run (default: the binary's, 300)
#   DYT_SWEEP_SEED      its seed (default: the binary's, printed in sweep.log)
#   DYT_SWEEP_SAN_CASES sweep cases under each sanitizer (default 40)
#   DYT_SWEEP_LIMIT_S, DYT_SWEEP_SAN_LIMIT_S  time limits of the plain run and of
#                       each sanitizer run (default 120 and 60 s)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${DYT_GPU_BUILD_DIR:-build-cuda}"
bin="$build/bin/cuda"
OUT="${OUT:-$PWD/$build/out}"  # the device tool sets OUT; elsewhere inside the ignored build folder
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1

stages=("$@")
if ((${#stages[@]} == 0)) || [[ "${stages[0]}" == all ]]; then stages=(tests sanitize sweep bench peers table examples); fi
status=0
note() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

for stage in "${stages[@]}"; do
  case "$stage" in
    tests)
      note "GPU tests (dyt_test_cuda, then dyt_test_cuda_quantize)"
      "$bin/dyt_test_cuda" 2>&1 | tee "$OUT/tests.log" | tail -n 25 || status=1
      "$bin/dyt_test_cuda_quantize" 2>&1 | tee -a "$OUT/tests.log" | tail -n 25 || status=1
      ;;
    sanitize)
      # The sanitizers slow every launch by 10-100x: DYT_CUDA_TEST_QUICK keeps
      # five shapes per layer and type and skips the > 2^31-element test.
      note "compute-sanitizer (DYT_CUDA_TEST_QUICK=1)"
      : >"$OUT/sanitizers.log"
      for test in dyt_test_cuda dyt_test_cuda_quantize; do
        for tool in memcheck racecheck initcheck synccheck; do
          note "$test: $tool" | tee -a "$OUT/sanitizers.log"
          DYT_CUDA_TEST_QUICK=1 compute-sanitizer --tool "$tool" --error-exitcode 86 "$bin/$test" \
            ${DYT_SANITIZE_TESTS:+"-tc=$DYT_SANITIZE_TESTS"} >>"$OUT/sanitizers.log" 2>&1
          rc=$?
          echo "$test: $tool: exit $rc" | tee -a "$OUT/sanitizers.log"
          grep -E "ERROR SUMMARY|test cases:" "$OUT/sanitizers.log" | tail -n 2
          ((rc == 0)) || status=1
        done
      done
      ;;
    sweep)
      # tests/cuda/test_sweep.cu: the random sweep, determinism over 100 runs,
      # concurrent streams and the edges, in full; then under each sanitizer
      # with DYT_SWEEP_QUICK=1 (3 determinism runs, small shapes) and a few
      # sweep cases. All of it in sweep.log; each run has a time limit (exit 124
      # when it runs out), so the stage takes at most about 6 minutes.
      note "GPU sweep (dyt_test_cuda_sweep)" | tee "$OUT/sweep.log"
      timeout "${DYT_SWEEP_LIMIT_S:-120}" "$bin/dyt_test_cuda_sweep" >>"$OUT/sweep.log" 2>&1
      rc=$?
      echo "plain run: exit $rc" | tee -a "$OUT/sweep.log"
      grep -E "DYT_SWEEP_SEED|test cases:" "$OUT/sweep.log" | tail -n 2
      ((rc == 0)) || status=1
      for tool in memcheck racecheck initcheck synccheck; do
        note "$tool (DYT_SWEEP_QUICK=1)" | tee -a "$OUT/sweep.log"
        DYT_SWEEP_QUICK=1 DYT_SWEEP_CASES="${DYT_SWEEP_SAN_CASES:-40}" timeout "${DYT_SWEEP_SAN_LIMIT_S:-60}" \
          compute-sanitizer --tool "$tool" --error-exitcode 86 "$bin/dyt_test_cuda_sweep" >>"$OUT/sweep.log" 2>&1
        rc=$?
        echo "$tool: exit $rc" | tee -a "$OUT/sweep.log"
        grep -E "ERROR SUMMARY|test cases:" "$OUT/sweep.log" | tail -n 2
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
      # Appended to bench.log: the device tool brings back 8 files at most.
      note "examples: paper_efficiency (the paper's Table 7 on this GPU)" | tee -a "$OUT/bench.log"
      "$bin/paper_efficiency" 2>&1 | tee -a "$OUT/bench.log" || status=1
      ;;
    *) echo "gpu-run.sh: unknown stage '$stage'" >&2; status=2 ;;
  esac
done
exit $status
