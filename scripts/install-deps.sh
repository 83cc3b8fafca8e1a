#!/usr/bin/env bash
# Installs the Debian packages dyt's build needs, skipping those already there.
#   scripts/install-deps.sh           compiler, CMake, ccache, xsimd, doctest, Eigen, Google Benchmark
#   scripts/install-deps.sh --cross   also the aarch64 cross compiler and qemu-user (for .ci/run)
#   scripts/install-deps.sh --bench   also oneDNN and OpenCL's loader (the peers of scripts/bench.sh)
#   scripts/install-deps.sh --fuzz    also clang and libFuzzer's runtime (fuzz/run.sh)
# Not root: prints the apt-get command to run and exits 1.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

packages=(cmake make g++ ccache libxsimd-dev doctest-dev libeigen3-dev libbenchmark-dev)
for arg in "$@"; do
  case "$arg" in
    --cross) packages+=(g++-aarch64-linux-gnu qemu-user) ;;
    --bench) packages+=(libdnnl-dev ocl-icd-opencl-dev) ;;
    --fuzz) packages+=(clang libclang-rt-14-dev) ;;
    -h | --help)
      sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *)
      echo "install-deps.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps.sh: no dpkg here (not Debian or Ubuntu): install these packages, or your system's" \
    "equivalents, yourself: ${packages[*]}" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps.sh: already installed: ${packages[*]}"
  exit 0
fi

say "missing Debian packages: ${missing[*]}"
if [[ "$(id -u)" -ne 0 ]]; then
  echo "install-deps.sh: installing them needs root; run this, then try again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
run apt-get update
run apt-get install -y --no-install-recommends "${missing[@]}"
