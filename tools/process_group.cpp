#include "process_group.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <thread>

#include "common/config.hpp"
#include "gmmav/build_options.hpp"
#include "gmmav/gmmav.hpp"
#include "rank_group.hpp"

#if GMMAV_WITH_MPI
#include "gmmav/mpi.hpp"
#include "mpi_rank_group.hpp"
#else
#include "common/mpi_launcher.hpp"
#endif

namespace gmmav::cli {

#if GMMAV_WITH_MPI
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
  auto ranks = std::make_unique<support::MpiRankGroup>(comm_.timeout());
  rank_ = ranks->rank();
  size_ = ranks->size();
  local_size_ = ranks->local_size();
  ranks_ = std::move(ranks);
}
#else
// Built without MPI: the ranks are threads of this process. Under a launcher "auto" refuses too:
// each process would otherwise run the whole group on its own.
ProcessGroup::ProcessGroup(const std::string& backend) {
  if (backend == "mpi")
    throw CLI::ValidationError("--backend mpi", std::string(without_mpi_message) +
                                                    ": one process per rank is not available; use --backend inproc "
                                                    "(ranks are threads), or rebuild gmmav with -DGMMAV_WITH_MPI=ON");
  if (backend == "auto" && started_by_mpi_launcher())
    throw CLI::ValidationError("--backend auto", std::string("started by an MPI launcher, but ") + without_mpi_message +
                                                     ": run it without mpirun (the ranks are threads of one process), "
                                                     "or rebuild gmmav with -DGMMAV_WITH_MPI=ON");
}
#endif

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
  set_compute_threads(std::max(1, cores / local_size_));
}

}  // namespace gmmav::cli
