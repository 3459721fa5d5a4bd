// Whether this process was started by an MPI launcher (mpirun/mpiexec, or a
// PMI/PMIx launcher such as Slurm's), from the environment alone: no MPI call,
// so it answers in a gmmav built without MPI too (GMMAV_WITH_MPI=OFF, D98),
// where the programs use it to refuse a launch they cannot serve instead of
// running the whole group in every process.
#pragma once

#include <cstdlib>

namespace gmmav {

/// True when a launcher's environment variables are present (the MPI backend's
/// comm::mpi::launched() asks this too: one list).
inline bool started_by_mpi_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

}  // namespace gmmav
