// What a backend's transport can do, as the exchange algorithm uses it
// (message_exchange.hpp: a call's MessagePlans, its SendRing and its table of
// typed transfers) — the gloo shape: point-to-point sends and receives with
// tags on two channels, posted and tested without blocking, the count check's
// collectives (count_check.hpp), and whether a peer's memory is addressable.
//
// MPI is one transport (mpi_transport.hpp). The in-process backend is the
// degenerate case — every peer addressable, rows written in place, no
// messages — and keeps its own exchange (in_process.cpp, D95).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

namespace gmmav::comm {

class CountCheck;

/// Two channels whose messages never match each other's receives: a call's
/// rows, and D56's heads (which a receiver posts for before it knows its tags).
enum class Channel : std::uint8_t { rows, heads };

/// What a transfer in flight is for.
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

/// A transfer's purpose and where its bytes go.
struct InFlight {
  Purpose purpose = Purpose::receive_tile;
  int slot = -1;                // send_tile: its ring slot
  int peer = -1;                // receives: the source
  std::int64_t landing_at = 0;  // receives: byte offset in the landing area (heads: in the heads' room)
  std::int64_t y_at = 0;        // receive_tile: byte offset of its rows in y
  std::int64_t bytes = 0;       // receive_tile, receive_whole: the bytes it must get
  int expert = 0;               // receive_tile: its local expert
};

/// A transfer that completed: what it was for and how.
struct Completed {
  InFlight what;
  int source = -1;         ///< receives: the sender
  int tag = 0;             ///< receives: the tag it came with
  std::int64_t bytes = 0;  ///< receives: the bytes that arrived
  std::string error;       ///< the transport's error; empty when it succeeded
};

/// A message: `count` units of the call's row (Unit::row) or bytes (Unit::byte).
enum class Unit : std::uint8_t { row, byte };
struct Message {
  Channel channel = Channel::rows;
  int peer = 0;
  int tag = 0;
  std::int64_t count = 0;
  Unit unit = Unit::row;
};

/// One call's transfers on a transport. Every method but purposes() runs
/// under the transport's lock().
class Transfers {
 public:
  virtual ~Transfers() = default;
  virtual void send(const Message& m, const std::byte* data, const InFlight& what) = 0;
  virtual void receive(const Message& m, std::byte* data, const InFlight& what) = 0;
  /// One non-blocking test of every transfer: what completed, in posting
  /// order; it leaves the table (a failed call never cancels a completed one).
  virtual std::span<const Completed> test() = 0;
  /// True (and the table emptied) when every transfer completed.
  virtual bool test_all() = 0;
  virtual bool empty() const = 0;
  virtual std::size_t size() const = 0;
  /// What the transfers in flight are for.
  virtual std::span<const InFlight> purposes() const = 0;
  /// A call that did not finish: cancels what can be cancelled and hands the
  /// rest to the transport, which keeps the memory they use (the group is broken).
  virtual void abandon() noexcept = 0;
};

/// What a backend's group can do, for every call.
class Transport {
 public:
  virtual ~Transport() = default;
  /// Serialises calls into the transport where it needs it (MPI below THREAD_MULTIPLE).
  virtual std::unique_lock<std::mutex> lock() = 0;
  /// True when threads other than the one that called meet (the pool's
  /// workers) may call the transport (under lock()); otherwise that thread polls.
  virtual bool workers_may_drive() const = 0;
  /// True when this rank can write a peer's memory itself (no message needed).
  virtual bool peer_addressable(int /*peer*/) const { return false; }
  /// The group's count check (its collectives are the transport's).
  virtual CountCheck& check() = 0;
  /// A call's transfers, its rows `row_bytes` wide.
  virtual std::unique_ptr<Transfers> transfers(std::int64_t row_bytes) = 0;
};

}  // namespace gmmav::comm
