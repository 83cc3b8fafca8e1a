# shellcheck shell=bash
# Shared by scripts/*.sh and .ci/run (sourced, not run).
#   DYT_JOBS   parallel build and test jobs (default 2)

DYT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DYT_JOBS="${DYT_JOBS:-2}"

# A heading, so a long log reads as a list of steps.
say() { printf '\n==> %s\n' "$*"; }

# Prints a command, shell-quoted, then runs it.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  "$@"
}

# dyt_build DIR [CMAKE_ARGS...]: configures dyt's source tree into DIR and builds it.
dyt_build() {
  local dir=$1
  shift
  run cmake -S "$DYT_ROOT" -B "$dir" "$@"
  run cmake --build "$dir" --parallel "$DYT_JOBS"
}

# dyt_ctest DIR: runs the tests of a build tree, showing the output of any that fail.
dyt_ctest() {
  (cd "$1" && run ctest --output-on-failure --parallel "$DYT_JOBS")
}
