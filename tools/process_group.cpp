#include "process_group.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <thread>

#include "comm/mpi_machines.hpp"
#include "common/config.hpp"
#include "gmmav/gmmav.hpp"
#include "gmmav/mpi.hpp"

namespace gmmav::cli {

ProcessGroup::ProcessGroup(const std::string& backend) {
  mpi_ = backend == "mpi" || (backend == "auto" && launched_by_mpi());
  if (!mpi_) return;
  if (!launched_by_mpi())
    throw CLI::ValidationError("--backend mpi",
                               "expected a process started by mpirun/mpiexec (one process per rank), "
                               "got no MPI launcher in the environment");
  comm_ = create_mpi_group();  // initialises MPI
  MPI_Comm_dup(MPI_COMM_WORLD, &world_);
  MPI_Comm_rank(world_, &rank_);
  MPI_Comm_size(world_, &size_);
  // Ranks sharing this machine's cores (not MPI_COMM_TYPE_SHARED: across
  // simulated hosts Open MPI's answer was inconsistent and the split hung or
  // crashed; comm/mpi_machines.hpp). Bounded by the group's timeout.
  local_size_ = comm::map_machines(world_, comm_.timeout()).ranks_on_machine_of(rank_);
}

ProcessGroup::~ProcessGroup() {
  int finalized = 0;
  if (mpi_) MPI_Finalized(&finalized);
  if (mpi_ && !finalized && world_ != MPI_COMM_NULL) MPI_Comm_free(&world_);
}

int ProcessGroup::max(int v) const {
  int out = v;
  if (mpi_) MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, world_);
  return out;
}

double ProcessGroup::max(double v) const {
  double out = v;
  if (mpi_) MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, world_);
  return out;
}

double ProcessGroup::sum(double v) const {
  double out = v;
  if (mpi_) MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, world_);
  return out;
}

void ProcessGroup::barrier() const {
  if (mpi_) MPI_Barrier(world_);
}

std::vector<std::string> ProcessGroup::gather(const std::string& mine) const {
  if (!mpi_) return {mine};
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<std::size_t>(size_)), displs(static_cast<std::size_t>(size_));
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, world_);
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[static_cast<std::size_t>(r)] = total;
    total += lens[static_cast<std::size_t>(r)];
  }
  std::string all(root() ? static_cast<std::size_t>(total) : 0, '\0');
  MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, 0, world_);
  std::vector<std::string> out;
  if (root())
    for (int r = 0; r < size_; ++r)
      out.push_back(all.substr(static_cast<std::size_t>(displs[static_cast<std::size_t>(r)]),
                               static_cast<std::size_t>(lens[static_cast<std::size_t>(r)])));
  return out;
}

void ProcessGroup::share_cores() const {
  if (!mpi_ || config::num_threads_given()) return;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_compute_threads(std::max(1, cores / local_size_));
}

}  // namespace gmmav::cli
