// gmmav native API: groups whose ranks are MPI processes (one machine or many).
// Only in a gmmav built with MPI (GMMAV_WITH_MPI, gmmav/build_options.hpp); the
// only public header that includes <mpi.h>.
//
// MPI is initialised by gmmav only if the program has not done it
// (MPI_Init_thread asking for MPI_THREAD_MULTIPLE; finalised at exit then).
#pragma once

#include "gmmav/build_options.hpp"

#if !GMMAV_WITH_MPI
#error "gmmav was built without MPI (GMMAV_WITH_MPI=OFF): gmmav/mpi.hpp is not available; rebuild gmmav with -DGMMAV_WITH_MPI=ON"
#endif

#include <mpi.h>

#include <cstddef>
#include <span>

#include "gmmav/comm.hpp"
#include "gmmav/export.hpp"

namespace gmmav {

/// This process's handle into a group over `comm` (duplicated internally):
/// the group's ranks are `comm`'s ranks. Collective over `comm`.
GMMAV_API Comm create_mpi_group(MPI_Comm comm = MPI_COMM_WORLD, const GroupOptions& options = {});

/// HCCL root-info style: every process of MPI_COMM_WORLD calls it; processes
/// passing the same `root_info` bytes form one group of `n_ranks`, and `rank` is
/// the rank this process asks for. Inconsistent sizes, duplicate or
/// out-of-range ranks fail on every process with a clear message.
GMMAV_API Comm create_mpi_group_from_root_info(int n_ranks, std::span<const std::byte> root_info, int rank,
                                               const GroupOptions& options = {});

/// True when this process was started by an MPI launcher (mpirun/mpiexec).
GMMAV_API bool launched_by_mpi();

/// Finalises MPI if gmmav initialised it (also done automatically at exit).
GMMAV_API void finalize_mpi();

}  // namespace gmmav
