#!/usr/bin/env bash
# Installs the Debian packages gmmav needs (only the missing ones; apt-get
# update first), then configures and builds into build/. Idempotent; never
# asks anything (safe under CI=true). Extra arguments go to cmake's configure step.
# Builds everything but the test suite (target gmmav_no_tests) unless --suite.
# --suite (first argument): also build the tests, and install what the whole suite needs beyond the build:
# PyTorch and pytest (python3-torch, python3-pytest: ctest label "python", docs/python.md) and
# clang-format, clang-tidy and flake8 (ctest style.format, style.python; scripts/tidy.sh in .ci/run).
# The Python package itself (pybind11 + Python headers, small) is always built; PyTorch is large,
# so only on request (D28). --python is the old name.
set -euo pipefail
cd "$(dirname "$0")/.."
with_suite=0
if [ "${1:-}" = "--suite" ] || [ "${1:-}" = "--python" ]; then
  with_suite=1
  shift
fi

packages=(g++ cmake ninja-build pkg-config libdnnl-dev libopenblas-dev libopenmpi-dev openmpi-bin
          libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libfmt-dev nlohmann-json3-dev python3-numpy
          python3-dev pybind11-dev)
if [ "$with_suite" = 1 ]; then packages+=(python3-torch python3-pytest python3-flake8 clang-format clang-tidy); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
# Without --suite only what Quick start line 1 runs (library, C API, CLI, Python package: the
# gmmav_no_tests target); with it everything, the tests too.
if [ "$with_suite" = 1 ]; then
  cmake --build build -j "$jobs"
else
  cmake --build build -j "$jobs" --target gmmav_no_tests
fi
