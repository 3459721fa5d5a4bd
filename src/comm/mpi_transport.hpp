// MPI as a transport (transport.hpp): a group's two communicators (rows;
// D56's heads on a dup), one committed datatype per row width, the thread
// level, the count check over MPI's collectives (mpi_check_collectives.hpp),
// and a call's transfers as MPI requests in a RequestTable
// (mpi_requests.hpp). MPI never gets a pointer into the caller's memory
// (D47): the exchange hands it only the communicator's staging.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "comm/count_check.hpp"
#include "comm/transport.hpp"

namespace gmmav::comm {

/// Where a failed call's unfinished requests go (the communicator's: it
/// keeps the staging they use, and the group is broken).
class Quarantine {
 public:
  virtual void quarantine(std::vector<MPI_Request> requests) noexcept = 0;

 protected:
  ~Quarantine() = default;
};

class MpiTransport final : public Transport {
 public:
  /// `tag_ub`: the largest MPI tag (a call whose tiles need more fails the count check).
  MpiTransport(MPI_Comm comm, MPI_Comm heads_comm, int rank, int size, int tag_ub, Quarantine& quarantine);
  std::unique_lock<std::mutex> lock() override;
  bool workers_may_drive() const override;
  CountCheck& check() override { return *check_; }
  /// Caller holds lock() (commits the row width's datatype on first use).
  std::unique_ptr<Transfers> transfers(std::int64_t row_bytes) override;

  /// The count check, for a group that may leave it pending in MPI.
  std::unique_ptr<CountCheck>& check_owner() { return check_; }
  /// Frees the row datatypes (caller holds lock(); MPI is not finalised).
  void free_types();

 private:
  MPI_Datatype row_type(std::int64_t row_bytes);

  MPI_Comm comm_, heads_comm_;
  Quarantine& quarantine_;
  std::unique_ptr<CountCheck> check_;  // a gather that timed out may still write into it
  // One committed datatype per row width, kept for the group's life (a call
  // would otherwise create and free one).
  std::vector<std::pair<std::int64_t, MPI_Datatype>> row_types_;
};

}  // namespace gmmav::comm
