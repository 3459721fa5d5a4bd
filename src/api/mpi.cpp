// Native API: MPI groups.
#include "gmmav/mpi.hpp"

#include "api/group_timeout.hpp"
#include "comm/mpi_communicator.hpp"
#include "comm/mpi_runtime.hpp"

namespace gmmav {

Comm create_mpi_group(MPI_Comm comm, const GroupOptions& options) {
  const auto timeout = api::group_timeout(options);
  return Comm(comm::create_mpi(comm, timeout, options.name));
}

Comm create_mpi_group_from_root_info(int n_ranks, std::span<const std::byte> root_info, int rank, const GroupOptions& options) {
  const auto timeout = api::group_timeout(options);
  return Comm(comm::create_mpi_from_root_info(n_ranks, root_info, rank, timeout));
}

bool launched_by_mpi() { return comm::mpi::launched(); }
void finalize_mpi() { comm::mpi::finalize(); }

}  // namespace gmmav
