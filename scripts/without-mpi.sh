#!/usr/bin/env bash
# The build without MPI (GMMAV_WITH_MPI=OFF, docs/decisions/D98.md), as a CI stage: configures
# BUILD_DIR with -DGMMAV_WITH_MPI=OFF, checks that no MPI header, library or source of the MPI
# backend is in its build, builds what changes without MPI and runs its tests:
# - the library, the C API, the CLI (with the bench) and the Python package (gmmav_no_tests);
# - the C API's tests (HcclCommInitRootInfo's paths), the comm layer's pure tests, the CLI's;
# - ctest label quick of those (arch.exports --without-mpi: no MPI symbol in either library;
#   cli.without_mpi_says_so: --backend mpi of run/verify/bench and mpirun without MPI are refused
#   naming GMMAV_WITH_MPI=OFF), python.api and python.gloo.W2 (skipped without torch), and
#   install.consumer (no gmmav/mpi.hpp installed, nothing links libmpi, find_package needs no MPI).
# Not built: gmmav_tests and gmmav_reliability_tests (the engine and its numerics, the same code
# with or without MPI: the ordinary build runs them), nor the MPI suite (it does not exist here).
#
#   scripts/without-mpi.sh [BUILD_DIR]     default: build-without-mpi
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-without-mpi}
jobs=$(nproc 2>/dev/null || echo 2)
start=$SECONDS

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGMMAV_WITH_MPI=OFF >/dev/null
grep -q '^GMMAV_WITH_MPI:BOOL=OFF$' "$build/CMakeCache.txt" || { echo "without-mpi: $build is not configured OFF" >&2; exit 1; }
# Nothing of MPI in the build: no include directory or library of an MPI, no file of the MPI backend.
if grep -n -E 'openmpi|mpich|libmpi|/mpi\.h|/(comm|support|bench/[a-z]+)/mpi_|aclnn_over_mpi|/api/mpi\.cpp' \
     "$build/build.ninja" "$build/compile_commands.json" >&2; then
  echo "without-mpi: the build without MPI names MPI (above)" >&2
  exit 1
fi
echo "== without-mpi: no MPI header, library or MPI backend file in $build/build.ninja and compile_commands.json =="

targets=(gmmav_no_tests gmmav_compat_tests gmmav_comm_tests gmmav_cli_tests)
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
echo "== without-mpi: built ${targets[*]} in $((SECONDS - start)) s =="

# The quick tests of what was built (gtest's placeholders of the binaries left out: *_NOT_BUILT;
# style.* and arch.layers/config read the sources, the same in every build), the Python tests
# that need no MPI, the install.
ctest --test-dir "$build" -j2 --output-on-failure -L 'quick|install' -E '_NOT_BUILT$|^style\.|^arch\.(layers|config)'
ctest --test-dir "$build" --output-on-failure -R '^python\.(api|gloo\.W2)$'
echo "== without-mpi: passed in $((SECONDS - start)) s =="
