// A group of ranks for the programs around the library: barriers, reductions
// and a gather, independent of the operator's communicator — the bench's
// timing (bench/), `gmmav run`/`verify` meeting their results on rank 0
// (tools/process_group.hpp). In-process ranks are threads of this process;
// MPI ranks are processes (mpi_rank_group.hpp).
//
// Every wait is polite (it sleeps instead of spinning): a rank that waits must
// not take a core from a rank that still computes, or the slowest rank's time
// would include the waiters' spinning.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace gmmav::support {

/// Thrown by a wait of a rank whose peer gave up (abandon()): the peer's own error is the real one.
struct PeerAbandoned : std::runtime_error {
  PeerAbandoned() : std::runtime_error("bench: another rank failed") {}
};

class RankGroup {
 public:
  virtual ~RankGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual bool is_mpi() const = 0;
  virtual void barrier() = 0;
  virtual double max(double v) = 0;  ///< over all ranks, returned on every rank
  virtual double min(double v) = 0;
  virtual double sum(double v) = 0;
  /// Rank 0 receives every rank's string (in rank order); other ranks get an empty list.
  virtual std::vector<std::string> gather(const std::string& mine) = 0;
  /// This rank failed and will not arrive again: every wait of the group, now and later,
  /// throws PeerAbandoned (in-process; an MPI rank's failure ends the job instead).
  virtual void abandon() {}
};

/// W handles for W rank threads of this process (element r is rank r's).
std::vector<std::unique_ptr<RankGroup>> make_in_process_group(int world_size);

}  // namespace gmmav::support
