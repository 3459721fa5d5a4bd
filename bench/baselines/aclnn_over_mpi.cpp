// The aclnn variant's communicators under MPI: one HcclCommInitRootInfo rank
// per process. Built only with MPI (GMMAV_WITH_MPI, D98).
#include <fmt/format.h>
#include <mpi.h>

#include "aclnn_variant.hpp"
#include "hccl/hccl.h"
#include "mpi_rank_group.hpp"

namespace gmmav::bench {

std::unique_ptr<AclnnCommunicators> AclnnCommunicators::over_mpi(support::RankGroup& rank_group) {
  auto& group = dynamic_cast<support::MpiRankGroup&>(rank_group);
  std::unique_ptr<AclnnCommunicators> c(new AclnnCommunicators);
  c->per_process_ = true;
  HcclRootInfo info{};
  int ok = group.rank() != 0 || HcclGetRootInfo(&info) == HCCL_SUCCESS;
  MPI_Bcast(&ok, 1, MPI_INT, 0, group.comm());
  if (!ok) {
    c->error_ = "HcclGetRootInfo failed on rank 0";
    return c;
  }
  MPI_Bcast(&info, sizeof info, MPI_BYTE, 0, group.comm());
  HcclComm comm = nullptr;
  const HcclResult rc =
      HcclCommInitRootInfo(static_cast<std::uint32_t>(group.size()), &info, static_cast<std::uint32_t>(group.rank()), &comm);
  if (rc != HCCL_SUCCESS)
    c->error_ = fmt::format("HcclCommInitRootInfo returned {}: {}", static_cast<int>(rc), recent_acl_error());
  else
    c->comms_.push_back(comm);
  return c;
}

}  // namespace gmmav::bench
