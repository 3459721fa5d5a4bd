// The processes a `gmmav run` or `gmmav verify` runs in: this process alone
// (the ranks are threads of an in-process group), or one process per rank
// started by an MPI launcher (--backend mpi, as `gmmav bench`; only in a gmmav
// built with MPI, GMMAV_WITH_MPI). Every rank checks its own outputs; the
// results meet on rank 0 through this group, and every process gets the same
// exit status.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gmmav/comm.hpp"

namespace gmmav::support {
class RankGroup;
}  // namespace gmmav::support

namespace gmmav::cli {

class ProcessGroup {
 public:
  /// `backend`: "inproc", "mpi", or "auto" (mpi when started by mpirun).
  /// Throws CLI::ValidationError for "mpi" without a launcher, and for "mpi"
  /// (or "auto" under a launcher) in a gmmav built without MPI.
  explicit ProcessGroup(const std::string& backend);
  ~ProcessGroup();  // defined where RankGroup is complete
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  bool is_mpi() const { return ranks_ != nullptr; }
  int rank() const { return rank_; }  ///< this process's rank (0 in-process)
  int size() const { return size_; }  ///< processes (1 in-process)
  bool root() const { return rank_ == 0; }
  /// The operator's handle for this process's rank (MPI only).
  const Comm& comm() const { return comm_; }

  // Over every process (the value itself in-process).
  double max(double v) const;
  double sum(double v) const;
  void barrier() const;
  /// Every process's string, on rank 0 (empty elsewhere).
  std::vector<std::string> gather(const std::string& mine) const;

  /// Without --threads and GMMAV_NUM_THREADS, ranks on one machine share its
  /// cores: one compute thread per core per machine, not per core per rank.
  void share_cores() const;

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1;  // local_size_: processes on this machine
  Comm comm_;
  std::unique_ptr<support::RankGroup> ranks_;  // MPI only: the processes' own group
};

}  // namespace gmmav::cli
