#!/usr/bin/env bash
# Runs the ISA-dependent quick tests once per instruction-set level below this host's
# (GMMAV_MAX_CPU_ISA caps gmmav's own kernels and oneDNN's: docs/decisions.md D66), so a host with
# AVX-512 also checks what an AVX2-only or a SIMD-less host computes: the chain kernel's paths,
# the conversions, the routes each level takes, and that a huge shape fails cleanly on each.
#
#   scripts/isa-levels.sh [BUILD_DIR]     default: build (built with its tests, as by scripts/setup.sh --suite)
#
# Levels, lowest first: portable, avx2, avx512, avx512_bf16; the host's level is read from
# /proc/cpuinfo (the same flags src/common/cpu_isa.hpp checks with CPUID). The host's own level
# is what the ordinary suite runs, so it is skipped here. Per level: the unit and property tests
# (gmmav_tests), the reliability tests and the compat (C API) tests — the ones that compute; the
# CLI, arch and style tests do not depend on the ISA. Exit 0 when every level passed (or none is
# below the host's), else 1 after running them all.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -f "$build/CTestTestfile.cmake" ] || { echo "isa-levels: no ctest tree in $build (build it with its tests first)" >&2; exit 2; }

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
host=portable
if has avx2 && has fma && has f16c; then
  host=avx2
  if has avx512f && has avx512bw && has avx512vl && has avx512dq; then
    host=avx512
    has avx512_bf16 && host=avx512_bf16
  fi
fi

# The test names of the binaries that compute (gtest names; the CLI's are cli.*, arch.*, style.*,
# bench.*): everything in label quick but those.
exclude='^(cli|arch|style|bench|consumer)\.'
failed=()
for level in portable avx2 avx512 avx512_bf16; do
  [ "$level" = "$host" ] && break
  echo "== isa-levels: GMMAV_MAX_CPU_ISA=$level (host: $host) =="
  start=$SECONDS
  if GMMAV_MAX_CPU_ISA=$level ctest --test-dir "$build" -L quick -E "$exclude" -j2 --output-on-failure; then
    echo "== isa-levels: $level passed in $((SECONDS - start)) s =="
  else
    failed+=("$level")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "isa-levels: failed at ${failed[*]} (host: $host)" >&2
  exit 1
fi
echo "isa-levels: every level below $host passed"
