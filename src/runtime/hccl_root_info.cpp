// HcclGetRootInfo / HcclCommInitRootInfo: one rank per process. The group is
// built by the backend factory registered with set_root_info_factory (e.g.
// torch.distributed's), else by the MPI backend; without either (gmmav built
// without MPI, GMMAV_WITH_MPI=OFF) only a 1-rank group can be made.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>

#include "gmmav/build_options.hpp"
#include "gmmav/gmmav.hpp"
#include "hccl/hccl.h"
#include "runtime/api_guard.hpp"
#include "runtime/device.hpp"
#include "runtime/hccl_comm.hpp"
#include "runtime/status_codes.hpp"

#if GMMAV_WITH_MPI
#include "gmmav/mpi.hpp"
#endif

namespace gmmav::runtime {
namespace {

std::atomic<RootInfoFactory> g_factory{nullptr};
std::atomic<std::uint64_t> g_root_counter{0};

// Rank `rank` of an `n_ranks`-rank group of one process per rank, without a registered factory:
// the MPI backend (which fails with how-to-launch advice without a launcher), when built with it.
gmmav::Comm process_per_rank_group(std::uint32_t n_ranks, const HcclRootInfo* info, std::uint32_t rank) {
#if GMMAV_WITH_MPI
  if (n_ranks == 1 && !gmmav::launched_by_mpi()) return gmmav::create_in_process_group(1).front();
  const auto* bytes = reinterpret_cast<const std::byte*>(info->internal);
  return gmmav::create_mpi_group_from_root_info(static_cast<int>(n_ranks), {bytes, sizeof(info->internal)},
                                                static_cast<int>(rank));
#else
  (void)info;
  (void)rank;
  if (n_ranks == 1) return gmmav::create_in_process_group(1).front();
  raise(HCCL_E_NOT_SUPPORT, "nRanks",
        "expected nRanks == 1 (or a backend registered for HcclCommInitRootInfo), got {}: one process per rank needs the "
        "MPI backend, and {} (use HcclCommInitAll for ranks that are threads of one process, or rebuild gmmav with "
        "-DGMMAV_WITH_MPI=ON)",
        n_ranks, gmmav::without_mpi_message);
#endif
}

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
    const RootInfoFactory f = root_info_factory();
    gmmav::Comm c = f != nullptr ? f(nRanks, rootInfo, rank) : process_per_rank_group(nRanks, rootInfo, rank);
    if (!c || c.size() != static_cast<int>(nRanks) || c.rank() != static_cast<int>(rank))
      raise(HCCL_E_INTERNAL, "rootInfo", "expected the backend to return rank {} of a {}-rank group, got rank {} of {}", rank,
            nRanks, c ? c.rank() : -1, c ? c.size() : 0);
    *comm = register_comm(std::move(c), current_device());
    return HCCL_SUCCESS;
  }));
}

}  // extern "C"
