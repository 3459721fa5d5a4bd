#include "process_group.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <thread>

#include "common/config.hpp"
#include "gmmav/gmmav.hpp"
#include "gmmav/mpi.hpp"
#include "mpi_rank_group.hpp"

namespace gmmav::cli {

ProcessGroup::ProcessGroup(const std::string& backend) {
  const bool mpi = backend == "mpi" || (backend == "auto" && launched_by_mpi());
  if (!mpi) return;
  if (!launched_by_mpi())
    throw CLI::ValidationError("--backend mpi",
                               "expected a process started by mpirun/mpiexec (one process per rank), "
                               "got no MPI launcher in the environment");
  comm_ = create_mpi_group();  // initialises MPI
  // The processes' own group (support/mpi_rank_group.hpp): a duplicate of MPI_COMM_WORLD, and the
  // ranks sharing this machine's cores by the comm layer's machine map (bounded by the timeout).
  ranks_ = std::make_unique<support::MpiRankGroup>(comm_.timeout());
  rank_ = ranks_->rank();
  size_ = ranks_->size();
}

ProcessGroup::~ProcessGroup() = default;

double ProcessGroup::max(double v) const { return ranks_ ? ranks_->max(v) : v; }

double ProcessGroup::sum(double v) const { return ranks_ ? ranks_->sum(v) : v; }

void ProcessGroup::barrier() const {
  if (ranks_) ranks_->barrier();
}

std::vector<std::string> ProcessGroup::gather(const std::string& mine) const {
  return ranks_ ? ranks_->gather(mine) : std::vector<std::string>{mine};
}

void ProcessGroup::share_cores() const {
  if (!ranks_ || config::num_threads_given()) return;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_compute_threads(std::max(1, cores / ranks_->local_size()));
}

}  // namespace gmmav::cli
