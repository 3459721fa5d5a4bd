// The MPI requests of one call in flight, each with what it is for.
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

namespace gmmav::comm {

/// What a request in flight is for.
enum class Purpose : std::uint8_t {
  send_tile,      ///< a message of a tile in a ring slot (InFlight::slot)
  send_whole,     ///< all of a peer's rows, from the send area
  send_head,      ///< this rank's head for a peer (D56)
  receive_tile,   ///< a message of a tile from `peer`, into the landing area, for y at y_at
  receive_whole,  ///< all of `peer`'s rows, one block per expert, into the landing area
  receive_head,   ///< `peer`'s head, into the room kept for it
};

constexpr bool is_receive(Purpose p) {
  return p == Purpose::receive_tile || p == Purpose::receive_whole || p == Purpose::receive_head;
}

/// A request's purpose and where its bytes go.
struct InFlight {
  Purpose purpose = Purpose::receive_tile;
  int slot = -1;                // send_tile: its ring slot
  int peer = -1;                // receives: the source
  std::int64_t landing_at = 0;  // receives: byte offset in the landing area (heads: in the heads' room)
  std::int64_t y_at = 0;        // receive_tile: byte offset of its rows in y
  std::int64_t bytes = 0;       // receive_tile, receive_whole: the bytes it must get
  int expert = 0;               // receive_tile: its local expert
};

/// A request that completed: what it was for, and MPI's status of it.
struct Completed {
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
  std::span<const Completed> test();
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
  std::vector<Completed> completed_;
};

}  // namespace gmmav::comm
