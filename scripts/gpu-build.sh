#!/usr/bin/env bash
# Builds the CUDA test, benchmark and example HERE (no GPU needed) for the GPU machine,
# then prints the one command to run there (scripts/gpu-run.sh).
#   scripts/gpu-build.sh [EXTRA_CMAKE_ARGS...]
#   DYT_GPU_BUILD_DIR  build folder (default <repo>/build-cuda, git-ignored)
#   DYT_CUDA_ARCH      CMAKE_CUDA_ARCHITECTURES (default 90: H100/H200)
#   DYT_JOBS           parallel jobs (default 1)
# Release, no debug info, sm_90 only, only the five CUDA targets (the three test
# binaries, the benchmark, the example); the binaries are stripped and Debian's
# libbenchmark.so.1debian is copied next to them, so build-cuda/bin/cuda and
# build-cuda/lib are all the device machine needs.
set -euo pipefail
DYT_JOBS="${DYT_JOBS:-1}"
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir="${DYT_GPU_BUILD_DIR:-$DYT_ROOT/build-cuda}"
arch="${DYT_CUDA_ARCH:-90}"
nvcc="${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"

say "configure $build_dir (CUDA architectures $arch)"
run cmake -S "$DYT_ROOT" -B "$build_dir" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_COMPILER="$nvcc" \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DDYT_ENABLE_CUDA=ON \
  -DDYT_BUILD_TESTS=ON \
  -DDYT_BUILD_BENCHMARKS=ON \
  -DDYT_BUILD_EXAMPLES=ON \
  "$@"

say "build the CUDA targets"
run cmake --build "$build_dir" --parallel "$DYT_JOBS" --target dyt_test_cuda dyt_test_cuda_sweep dyt_test_cuda_quantize dyt_bench_cuda \
  dyt_example_paper_efficiency_cuda

bin="$build_dir/bin/cuda"
run strip "$bin/dyt_test_cuda" "$bin/dyt_test_cuda_sweep" "$bin/dyt_test_cuda_quantize" "$bin/bench_cuda" "$bin/paper_efficiency"
mkdir -p "$build_dir/lib"
lib=/usr/lib/x86_64-linux-gnu/libbenchmark.so.1debian
if [[ -f "$lib" ]]; then
  run cp -L "$lib" "$build_dir/lib/"
else
  echo "gpu-build.sh: $lib not found; bench_cuda will need Google Benchmark's shared library on the GPU machine" >&2
fi
du -sh "$bin" "$build_dir/lib"

rel_bin="${bin#"$DYT_ROOT"/}"
rel_lib="${build_dir#"$DYT_ROOT"/}/lib"
say "device command (run from the repository root on the GPU machine)"
echo "  command: scripts/gpu-run.sh all"
echo "  carry:   [\"$rel_bin\", \"$rel_lib\"]"
echo "  (stages: tests sanitize sweep bench peers table examples, or all; logs go to \$OUT)"
