// RankGroup over MPI (one rank per process), on a duplicate of MPI_COMM_WORLD
// so the group's own traffic never matches the operator's messages.
#pragma once

#include <mpi.h>

#include <chrono>

#include "rank_group.hpp"

namespace gmmav::support {

class MpiRankGroup final : public RankGroup {
 public:
  /// MPI must be initialised (gmmav::create_mpi_group does it); `timeout` bounds the start-up
  /// exchange that finds the ranks sharing this machine (comm::map_machines).
  explicit MpiRankGroup(std::chrono::milliseconds timeout);
  ~MpiRankGroup() override;
  MpiRankGroup(const MpiRankGroup&) = delete;
  MpiRankGroup& operator=(const MpiRankGroup&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool is_mpi() const override { return true; }
  void barrier() override;
  double max(double v) override { return allreduce(v, MPI_MAX); }
  double min(double v) override { return allreduce(v, MPI_MIN); }
  double sum(double v) override { return allreduce(v, MPI_SUM); }
  std::vector<std::string> gather(const std::string& mine) override;

  MPI_Comm comm() const { return comm_; }
  /// Ranks of this group on this machine (they share its cores).
  int local_size() const { return local_size_; }
  /// CPUs those ranks may run on together: the union of their affinity masks
  /// (each rank's own mask is 1 CPU on a pinned simulated host, sim-cluster --pin).
  int local_cores() const { return local_cores_; }

 private:
  double allreduce(double v, MPI_Op op);
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_size_ = 1, local_cores_ = 1;
};

/// Waits for `req` by testing and sleeping (never spins a core away from a computing rank).
/// The sleep doubles from 20 us up to `max_sleep_us`: a rank that waits long (the others
/// while rank 0 runs the bench's library variant) wakes rarely.
void polite_wait(MPI_Request* req, int max_sleep_us = 50);

}  // namespace gmmav::support
