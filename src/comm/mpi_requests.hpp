// The MPI requests of one call in flight, each with what it is for (the MPI
// transport's Transfers keep them here: mpi_transport.hpp).
//
// A request is a send (a tile's message from a ring slot, a peer's whole
// message, a head) or a receive (a tile's message, a source's whole message,
// a source's head). What completes is handed back with its purpose and
// status, and leaves the table at once: a table never holds a completed
// request, so cancelling what is left (a call that failed) never cancels one.
// Every method but purposes() needs mpi::lock() held by the caller.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <span>
#include <vector>

#include "comm/transport.hpp"

namespace gmmav::comm {

/// A request that completed: what it was for, and MPI's status of it.
struct MpiCompleted {
  InFlight what;
  MPI_Status status;
  int error = MPI_SUCCESS;  // the status's error (MPI_ERR_IN_STATUS), else MPI_SUCCESS
};

class RequestTable {
 public:
  void add(MPI_Request request, const InFlight& what);
  bool empty() const { return requests_.empty(); }
  std::size_t size() const { return requests_.size(); }
  /// What the requests in flight are for.
  std::span<const InFlight> purposes() const { return in_flight_; }

  /// One MPI_Testsome: what completed, in the table's order; it leaves the
  /// table. Throws gmmav::Error when MPI_Testsome itself fails.
  std::span<const MpiCompleted> test();
  /// True (and the table emptied) when every request completed (MPI_Testall).
  bool test_all();
  /// A failed call: cancels the receives (harmless on a matched one), drops
  /// what completed, and hands over the requests MPI still holds.
  std::vector<MPI_Request> cancel_receives_and_release();
  /// The requests not known to be complete, without calling MPI (the table is emptied).
  std::vector<MPI_Request> release();

 private:
  void drop_completed();

  std::vector<MPI_Request> requests_;
  std::vector<InFlight> in_flight_;  // [i]: what requests_[i] is for
  std::vector<int> indices_;
  std::vector<MPI_Status> statuses_;
  std::vector<MpiCompleted> completed_;
};

}  // namespace gmmav::comm
