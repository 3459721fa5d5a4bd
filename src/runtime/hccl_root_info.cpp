// HcclGetRootInfo / HcclCommInitRootInfo: one rank per process. The group is
// built by the backend factory registered with set_root_info_factory (the MPI
// backend); without one only a 1-rank group can be made.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>

#include "gmmav/mpi.hpp"
#include "hccl/hccl.h"
#include "runtime/api_guard.hpp"
#include "runtime/device.hpp"
#include "runtime/hccl_comm.hpp"
#include "runtime/status_codes.hpp"

namespace gmmav::runtime {
namespace {

std::atomic<RootInfoFactory> g_factory{nullptr};
std::atomic<std::uint64_t> g_root_counter{0};

}  // namespace

void set_root_info_factory(RootInfoFactory factory) noexcept { g_factory.store(factory); }
RootInfoFactory root_info_factory() noexcept { return g_factory.load(); }

}  // namespace gmmav::runtime

using namespace gmmav::runtime;

extern "C" {

HcclResult HcclGetRootInfo(HcclRootInfo* rootInfo) {
  return static_cast<HcclResult>(guarded(__func__, kHcclCodes, [&] {
    if (rootInfo == nullptr) raise(HCCL_E_PTR, "rootInfo", "expected a place for {} bytes, got null", HCCL_ROOT_INFO_BYTES);
    // A readable, NUL-terminated id that no other call (in any process) returns:
    // 128 random bits, the process id, a per-process counter and the time.
    std::random_device rd;
    const auto now = std::chrono::system_clock::now().time_since_epoch().count();
    const std::string id = fmt::format("gmmav-root-{:08x}{:08x}{:08x}{:08x}-{}-{}-{:x}", rd(), rd(), rd(), rd(),
                                       static_cast<long>(::getpid()), g_root_counter.fetch_add(1), now);
    std::memset(rootInfo->internal, 0, sizeof(rootInfo->internal));
    std::memcpy(rootInfo->internal, id.c_str(), id.size() + 1);
    return HCCL_SUCCESS;
  }));
}

HcclResult HcclCommInitRootInfo(uint32_t nRanks, const HcclRootInfo* rootInfo, uint32_t rank, HcclComm* comm) {
  return static_cast<HcclResult>(guarded(__func__, kHcclCodes, [&] {
    if (rootInfo == nullptr) raise(HCCL_E_PTR, "rootInfo", "expected the group's root info, got null");
    if (comm == nullptr) raise(HCCL_E_PTR, "comm", "expected a place to store the handle, got null");
    if (nRanks == 0) raise(HCCL_E_PARA, "nRanks", "expected >= 1, got 0");
    if (rank >= nRanks) raise(HCCL_E_PARA, "rank", "expected a rank in [0, {}), got {}", nRanks, rank);
    gmmav::Comm c;
    if (RootInfoFactory f = root_info_factory(); f != nullptr) {
      c = f(nRanks, rootInfo, rank);
    } else if (nRanks == 1 && !gmmav::launched_by_mpi()) {
      c = gmmav::create_in_process_group(1).front();
    } else {
      // One process per rank: the MPI backend (fails with how-to-launch advice without a launcher).
      const auto* bytes = reinterpret_cast<const std::byte*>(rootInfo->internal);
      c = gmmav::create_mpi_group_from_root_info(static_cast<int>(nRanks), {bytes, sizeof(rootInfo->internal)},
                                                 static_cast<int>(rank));
    }
    if (!c || c.size() != static_cast<int>(nRanks) || c.rank() != static_cast<int>(rank))
      raise(HCCL_E_INTERNAL, "rootInfo", "expected the backend to return rank {} of a {}-rank group, got rank {} of {}", rank,
            nRanks, c ? c.rank() : -1, c ? c.size() : 0);
    *comm = register_comm(std::move(c), current_device());
    return HCCL_SUCCESS;
  }));
}

}  // extern "C"
