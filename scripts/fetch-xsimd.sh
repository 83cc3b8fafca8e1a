#!/usr/bin/env bash
# Fetches a newer xsimd than Debian's 8.1, to build dyt's tests against it:
# the copy of xsimd 14.1 that PyPI's pythran 0.19.0 wheel carries (header-only,
# pinned by checksum). No Debian package has xsimd >= 9.
#   scripts/fetch-xsimd.sh DIR     writes DIR/pythran/xsimd/xsimd.hpp and friends;
#                                  build with -DCMAKE_CXX_FLAGS=-IDIR/pythran
# Exits 3 (and says so) when PyPI can't be reached, 1 on any other failure.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

dir=${1:?usage: scripts/fetch-xsimd.sh DIR}
wheel=pythran-0.19.0-py3-none-any.whl
sha256=42ab2039b4eaec01084e92a2721a474e893047ba5ec87b14d45ee077ac883d08

mkdir -p "$dir"
if [[ ! -f "$dir/$wheel" ]]; then
  if ! run python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" pythran==0.19.0; then
    echo "fetch-xsimd.sh: could not download $wheel from PyPI" >&2
    exit 3
  fi
fi
echo "$sha256  $dir/$wheel" | sha256sum --check --quiet
python3 - "$dir/$wheel" "$dir" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    wheel.extractall(sys.argv[2], [n for n in wheel.namelist() if n.startswith("pythran/xsimd/")])
PY
grep -h '#define XSIMD_VERSION_M' "$dir/pythran/xsimd/config/xsimd_config.hpp"
