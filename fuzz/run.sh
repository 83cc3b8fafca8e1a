#!/usr/bin/env bash
# Builds dyt's libFuzzer harnesses with clang (ASan + UBSan) and runs each for
# a bounded time. Exits non-zero on any finding (crash, sanitizer report,
# failed check, timeout, out of memory) or if the tools are missing.
#
#   fuzz/run.sh [SECONDS] [HARNESS...]    # default: 60 s each, all harnesses
#   fuzz/run.sh 300 fuzz_layer_norm       # one harness for five minutes
#   fuzz/run.sh 0                         # build, and only replay the seed corpus
#
# Environment:
#   DYT_FUZZ_BUILD_DIR  build folder (default <repo>/build-fuzz): binaries, the growing
#                       corpus (corpus/<harness>), crash files (artifacts/), logs
#   DYT_FUZZ_ARCH       -march value (default native; "none" adds no flag)
#   CXX                 the clang++ to use (default: clang++, else clang++-14 ... clang++-19)
#   DYT_FUZZ_FLAGS      extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# It installs nothing. It needs clang with its libFuzzer runtime: on Debian 12
# the packages clang and libclang-rt-14-dev (or clang-N and libclang-rt-N-dev),
# and libxsimd-dev for the SIMD backend (without it dyt::cpu is the scalar path).
# A finding leaves its input in artifacts/; rerun it with
#   build-fuzz/<harness> build-fuzz/artifacts/<harness>-crash-...
# fuzz/README.md describes the harnesses, what they check and how to add a
# regression test for a finding.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
seconds="${1:-60}"
shift || true
harnesses=("$@")
if ((${#harnesses[@]} == 0)); then harnesses=(fuzz_dyt fuzz_layer_norm fuzz_rms_norm); fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "fuzz/run.sh: SECONDS must be a whole number, got '$seconds'" >&2
  exit 2
fi

build="${DYT_FUZZ_BUILD_DIR:-$root/build-fuzz}"
arch="${DYT_FUZZ_ARCH:-native}"

missing_tools() {
  echo "fuzz/run.sh: $1" >&2
  echo "fuzz/run.sh: on Debian 12 install the packages: clang libclang-rt-14-dev libxsimd-dev" >&2
  echo "fuzz/run.sh:   (as root) apt-get install -y clang libclang-rt-14-dev libxsimd-dev" >&2
  exit 3
}

cxx="${CXX:-}"
if [[ -z "$cxx" || "$cxx" != *clang* ]]; then
  cxx=""
  for c in clang++ clang++-14 clang++-15 clang++-16 clang++-17 clang++-18 clang++-19; do
    if command -v "$c" >/dev/null 2>&1; then
      cxx="$c"
      break
    fi
  done
fi
[[ -n "$cxx" ]] || missing_tools "no clang++ found"

mkdir -p "$build/artifacts" "$build/logs"
# libFuzzer's runtime: link a trivial harness.
probe="$build/logs/probe"
printf '%s\n' '#include <cstdint>' '#include <cstddef>' \
  'extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }' >"$probe.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe.cpp" -o "$probe" >"$probe.log" 2>&1; then
  cat "$probe.log" >&2
  missing_tools "$cxx cannot link -fsanitize=fuzzer,address,undefined (libFuzzer's runtime is missing)"
fi
if ! echo '#include <xsimd/xsimd.hpp>' | "$cxx" -std=c++17 -x c++ -fsyntax-only - >/dev/null 2>&1; then
  echo "fuzz/run.sh: note: xsimd not found (Debian: libxsimd-dev): dyt::cpu is built as its scalar path" >&2
fi

flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I"$root/include")
if [[ "$arch" != none ]]; then flags+=("-march=$arch"); fi
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(ccache); fi

status=0
summary=()
for h in "${harnesses[@]}"; do
  src="$here/$h.cpp"
  if [[ ! -f "$src" ]]; then
    echo "fuzz/run.sh: no harness $src" >&2
    exit 2
  fi
  echo "== building $h"
  "${launcher[@]}" "$cxx" "${flags[@]}" "$src" -o "$build/$h"
done

for h in "${harnesses[@]}"; do
  corpus="$build/corpus/$h"
  mkdir -p "$corpus"
  log="$build/logs/$h.log"
  echo "== running $h for ${seconds}s (log: $log)"
  args=(-artifact_prefix="$build/artifacts/$h-" -print_final_stats=1 -timeout=60 -rss_limit_mb=4096)
  if ((seconds == 0)); then
    args+=(-runs=0)
  else
    args+=(-max_total_time="$seconds")
  fi
  # shellcheck disable=SC2206
  extra=(${DYT_FUZZ_FLAGS:-})
  set +e
  "$build/$h" "${args[@]}" "${extra[@]}" "$corpus" "$here/corpus/$h" >"$log" 2>&1
  rc=$?
  set -e
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  if ((rc != 0)); then
    status=1
    summary+=("$(printf '%-18s FAILED (exit %d) after %s runs: see %s' "$h" "$rc" "${runs:-?}" "$log")")
    grep -m1 -A3 -E 'FINDING|ERROR: (AddressSanitizer|libFuzzer)|runtime error' "$log" >&2 || tail -20 "$log" >&2
  else
    summary+=("$(printf '%-18s ok: %s runs in %ss, corpus %s files' "$h" "${runs:-?}" "$seconds" \
      "$(find "$corpus" -type f | wc -l)")")
  fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$status"
