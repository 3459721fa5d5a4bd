// Native API: MPI groups.
#include "gmmav/mpi.hpp"

#include <memory>

#include "api/comm_access.hpp"
#include "api/group_timeout.hpp"
#include "comm/mpi_communicator.hpp"
#include "comm/mpi_runtime.hpp"
#include "engine/compute_pool.hpp"

namespace gmmav {
namespace {

// The backend's thread policy, applied to the process's pool once the group
// exists (comm never reaches into the engine: communicator.hpp). MPI: one rank
// per process, whose thread computes beside the workers (D4); the mode stays
// for the process's life, as before.
Comm adopt(std::shared_ptr<comm::Communicator> impl) {
  if (impl->caller_computes()) engine::ComputePool::instance().set_caller_computes(true);
  return detail::CommAccess::wrap(std::move(impl));
}

}  // namespace

Comm create_mpi_group(MPI_Comm comm, const GroupOptions& options) {
  const auto timeout = api::group_timeout(options);
  return adopt(comm::create_mpi(comm, timeout, options.name));
}

Comm create_mpi_group_from_root_info(int n_ranks, std::span<const std::byte> root_info, int rank, const GroupOptions& options) {
  const auto timeout = api::group_timeout(options);
  return adopt(comm::create_mpi_from_root_info(n_ranks, root_info, rank, timeout));
}

bool launched_by_mpi() { return comm::mpi::launched(); }
void finalize_mpi() { comm::mpi::finalize(); }

}  // namespace gmmav
