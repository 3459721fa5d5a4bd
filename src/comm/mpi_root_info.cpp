// HCCL-style bootstrap over MPI: processes that pass the same root-info bytes
// form one group, each at the rank it asked for (MPI_Comm_split with the
// requested rank as key). Every process sees the same table of (identity,
// size, rank) requests, so every process reaches the same verdict.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <vector>

#include "comm/mpi_communicator.hpp"
#include "comm/mpi_runtime.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {

namespace {
constexpr char kMagic[] = "GMMAV-ROOTINFO-1:";
}

std::string root_info_identity(std::span<const std::byte> root_info) {
  const char* p = reinterpret_cast<const char*>(root_info.data());
  const std::size_t n = root_info.size();
  std::size_t len = 0;
  while (len < n && p[len] != '\0') ++len;
  return std::string(p, len);
}

std::shared_ptr<Communicator> create_mpi_from_root_info(int n_ranks, std::span<const std::byte> root_info, int rank,
                                                        std::chrono::milliseconds timeout) {
  if (!mpi::launched() && n_ranks > 1)
    fail(Errc::invalid_argument, "rootInfo",
         "expected a process started by an MPI launcher for a group of {} ranks, got a process started on its own; launch one "
         "process per rank, e.g. `mpirun -np {} <program>` (see docs/distributed.md)",
         n_ranks, n_ranks);
  mpi::ensure_initialized();
  int world_rank = 0, world_size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  const std::string id = root_info_identity(root_info);
  const std::uint64_t h = std::hash<std::string>{}(id);
  // (identity hash, n_ranks, rank) of every process.
  std::int64_t mine[3] = {static_cast<std::int64_t>(h & 0x3FFFFFFFFFFFFFFFULL), n_ranks, rank};
  std::vector<std::int64_t> all(static_cast<std::size_t>(3 * world_size));
  MPI_Request req;
  {
    auto lk = mpi::lock();
    mpi::check(MPI_Iallgather(mine, 3, MPI_INT64_T, all.data(), 3, MPI_INT64_T, MPI_COMM_WORLD, &req), "MPI_Iallgather");
  }
  mpi::wait(&req, timeout, "waiting for every process of the MPI job to call HcclCommInitRootInfo");
  // Group processes by identity and check each group.
  std::map<std::int64_t, std::vector<int>> groups;
  for (int p = 0; p < world_size; ++p) groups[all[static_cast<std::size_t>(3 * p)]].push_back(p);
  for (const auto& [hash, procs] : groups) {
    const std::int64_t want = all[static_cast<std::size_t>(3 * procs[0] + 1)];
    std::vector<int> seen(static_cast<std::size_t>(std::max<std::int64_t>(want, 0)), -1);
    for (int p : procs) {
      const std::int64_t n = all[static_cast<std::size_t>(3 * p + 1)];
      const std::int64_t r = all[static_cast<std::size_t>(3 * p + 2)];
      if (n != want)
        fail(Errc::invalid_argument, "nRanks",
             "processes with the same root info disagree on nRanks: process {} has {}, process {} has {}", procs[0], want, p, n);
      if (r < 0 || r >= want)
        fail(Errc::invalid_argument, "rank", "expected a rank in [0, {}), got {} on process {}", want, r, p);
      if (seen[static_cast<std::size_t>(r)] >= 0)
        fail(Errc::invalid_argument, "rank", "expected distinct ranks, got rank {} on processes {} and {}", r,
             seen[static_cast<std::size_t>(r)], p);
      seen[static_cast<std::size_t>(r)] = p;
    }
    if (static_cast<std::int64_t>(procs.size()) != want)
      fail(Errc::invalid_argument, "nRanks",
           "expected {} processes with the same root info, got {} (the launcher started {} processes; do all of them pass the "
           "same root info bytes and nRanks?)",
           want, procs.size(), world_size);
  }
  MPI_Comm split;
  {
    auto lk = mpi::lock();
    mpi::check(MPI_Comm_split(MPI_COMM_WORLD, static_cast<int>(mine[0] & 0x3FFFFFFF), rank, &split), "MPI_Comm_split");
  }
  auto comm = create_mpi(split, timeout, fmt::format("gmmav-mpi-{:x}", h & 0xFFFFFFFFULL));
  auto lk = mpi::lock();
  MPI_Comm_free(&split);
  return comm;
}

}  // namespace gmmav::comm
