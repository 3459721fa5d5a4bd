// HCCL communicators: an HcclComm is one rank's gmmav::Comm plus the device
// the rank is bound to. Handles are registered by group name, which is how
// the aclnn op's `group` string finds the caller's rank (HCCL semantics: every
// rank of a group reports the same name from HcclGetCommName).
#pragma once

#include <cstdint>
#include <string>

#include "gmmav/comm.hpp"
#include "hccl/hccl_types.h"

namespace gmmav::runtime {

/// What an HcclComm points to.
struct HcclCommHandle {
  gmmav::Comm comm;
  std::int32_t device = -1;  ///< the device slot of this rank; -1 = not bound to one
};

/// Registers a rank's handle and returns it as an HcclComm.
HcclComm register_comm(gmmav::Comm comm, std::int32_t device);

/// The live handle behind `comm`. Throws ApiError: HCCL_E_PTR for null,
/// HCCL_E_PARA for a handle that was never created or is destroyed.
HcclCommHandle& handle_of(HcclComm comm);

/// Unregisters and frees a handle (in-flight calls keep their gmmav::Comm alive).
void destroy_comm(HcclComm comm);

/// The communicator the op's `group` names for the calling thread, and the
/// device its calls must run on (-1: any).
struct ResolvedGroup {
  gmmav::Comm comm;
  int device = -1;
};

/// Which rank's communicator the op's `group` names for the calling thread:
/// the one bound to `device` (the thread's current device); or, when the
/// process only ever had one handle of that name (one rank per process:
/// HcclCommInitRootInfo), that one whatever the device. A destroyed rank's
/// device never falls back to another rank of its group.
/// Throws gmmav::Error(invalid_argument, "group") naming what was looked for.
ResolvedGroup resolve_group(const std::string& name, int device);

/// HcclCommInitRootInfo's backend hook. A process-spanning backend (MPI)
/// registers a factory that joins rank `rank` of the `n_ranks`-rank group
/// identified by `info` (every rank passes the same bytes) and returns that
/// rank's Comm; it may throw gmmav::Error. Without a factory,
/// HcclCommInitRootInfo supports only nRanks == 1.
using RootInfoFactory = gmmav::Comm (*)(std::uint32_t n_ranks, const HcclRootInfo* info, std::uint32_t rank);
void set_root_info_factory(RootInfoFactory factory) noexcept;  ///< nullptr removes it
RootInfoFactory root_info_factory() noexcept;

}  // namespace gmmav::runtime
