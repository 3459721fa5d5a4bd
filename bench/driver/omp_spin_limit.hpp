// The library baseline's OpenMP threads must not spin for long on this kind
// of machine (docs/performance.md, "Benchmark hygiene").
#pragma once

#include <string>

namespace gmmav::bench {

/// libgomp reads GOMP_SPINCOUNT when it is loaded, so the bench sets it by
/// re-executing itself once, before MPI or any OpenMP region starts: unless
/// the user set GOMP_SPINCOUNT or OMP_WAIT_POLICY, the process execs itself
/// with GOMP_SPINCOUNT=10000 (in-process) or 1000 (`mpi`: one process per
/// rank). Returns without exec when nothing is to be done (or the exec
/// failed: the run then goes on with libgomp's default).
void limit_openmp_spinning(bool mpi);

/// The setting in effect, for the report ("10000 (set by the bench)", "default", ...).
std::string openmp_spin_setting();

}  // namespace gmmav::bench
