// Creating MPI groups (one rank per process).
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "comm/communicator.hpp"

namespace gmmav::comm {

/// This process's communicator over a duplicate of `user_comm`. Collective.
std::shared_ptr<Communicator> create_mpi(MPI_Comm user_comm, std::chrono::milliseconds timeout, const std::string& name);

/// Root-info bootstrap over MPI_COMM_WORLD (see gmmav/mpi.hpp). Collective over the world.
std::shared_ptr<Communicator> create_mpi_from_root_info(int n_ranks, std::span<const std::byte> root_info, int rank,
                                                        std::chrono::milliseconds timeout);

/// The identity of root-info bytes: gmmav's own format (magic + id) or, for
/// bytes written by hand, the C string up to the first NUL (the rest of such a
/// struct is often uninitialised).
std::string root_info_identity(std::span<const std::byte> root_info);

}  // namespace gmmav::comm
