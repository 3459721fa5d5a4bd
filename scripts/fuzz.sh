#!/usr/bin/env bash
# Fuzzes the aclnn entry point with libFuzzer (clang, ASan+UBSan) for N seconds
# (default 60), starting from the corpus in tests/fuzz/corpus (new inputs go to build-fuzz/corpus).
# Usage: scripts/fuzz.sh [seconds] [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
command -v clang++ >/dev/null || { echo "fuzz: needs clang++ (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGMMAV_SANITIZE=address \
  -DGMMAV_FUZZ=ON -DGMMAV_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz --target gmmav_aclnn_fuzz
mkdir -p build-fuzz/corpus
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export GMMAV_TIMEOUT_MS=5000
build-fuzz/bin/gmmav_aclnn_fuzz -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  "$@" build-fuzz/corpus tests/fuzz/corpus
