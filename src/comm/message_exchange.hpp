// One call of the MPI backend, as one rank sees it (comm::Exchange).
//
// Which messages go to and come from each peer is the call's MessagePlan
// (message_plan.hpp: whole messages, tiles and their parts, heads); this
// class moves them: the engine's tiles into the send ring or the send area,
// their messages into MPI once the count check passed, the receives posted
// for every incoming message into the landing area, and from there into y.
//
// meet (mpi_communicator.cpp) starts the cross-rank count check
// (count_check.hpp, over MPI collectives), which the threads that drive MPI advance while the
// engine computes; once it passed, receives are posted and queued sends
// start. Until then tiles for remote ranks wait in staging and nothing is
// written to this rank's outputs. Tiles for remote ranks are computed into a
// bounded ring of tile-sized staging slots (send_ring.hpp: as many as the
// caller's workspace size allows, about a quarter of the send volume for
// large calls) and sent as soon as each is written; a slot is reused once its
// sends completed. Tiles for this rank go straight into y.
// MPI never holds a pointer into the caller's memory (D47): the ring, the
// send area and the receives' landing area belong to the communicator
// (Staging), and a received tile is copied into y (the unpermute is only
// offsets) by the thread that saw its receive complete. A send cannot be
// cancelled, nor a receive matched before a failure, so after a failed call
// MPI may still read or write those buffers: the communicator then keeps
// them, with the call's unfinished requests (Quarantine), and refuses every
// later call (the group is broken). Nothing reaches y, mmY or the workspace
// after the call threw.
// A peer whose rows of the call fit in one message (a small call: a decode
// step) gets them all in one message, written in place in the send area and
// sent when its last tile is in: per-message costs, not bytes, are what such
// a call pays.
// Small calls after a small call (D56): the count check travels in those
// messages. Each peer gets one "head" (on a dup of the group's communicator):
// this rank's header, its counts for the peer, and its rows for the peer when
// they fit, sent when the last of them is written. The check runs on the
// heads that arrived, in the communicator's room for them; the rows reach y
// only once it passed. This rank's own rows and mmY wait in staging, not for
// the verdict; a head whose rows are not written when this rank must wait for
// anything leaves without them (the rows follow as the peer's one message),
// so no rank's header waits on a rank that waits.
// A tile for a peer on another machine goes in messages below Open MPI's TCP
// eager limit (MessagePolicy): a larger message waits for a rendezvous round
// trip, which needs the receiver inside MPI, and the wire idles
// (docs/performance.md "Across hosts").
// MPI's progress is weak, so someone must call MPI while the pool computes.
// With MPI_THREAD_SERIALIZED or better the pool worker that finished a tile
// does it, at that tile boundary: it starts the tile's sends and tests the
// call's requests (one non-blocking pass), so no other thread wakes up and
// takes a core from the GEMMs (docs/performance.md, "MPI progress"). Under
// MPI_THREAD_FUNNELED only the orchestrating thread may call MPI: it polls
// while the pool computes, as the fallback.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.hpp"
#include "comm/count_check.hpp"
#include "comm/message_plan.hpp"
#include "comm/send_ring.hpp"
#include "comm/transport.hpp"

namespace gmmav::comm {

/// GMMAV_MPI_PROGRESS (read once; create_mpi reads it first, so a bad value
/// fails the group's creation, not a call). 0: nobody drives MPI while the
/// pool computes (sends start when the ring is full, and in finish).
bool mpi_progress_enabled();

/// Memory MPI touches during a call, owned by the communicator (D47): the
/// send ring, the send area (whole messages, heads), the landing area of
/// receives, the room for peers' heads, this rank's own rows until agreed.
/// Grown when a call needs more; kept between calls (no page faults per call).
class Staging {
 public:
  std::byte* ring(std::size_t bytes) { return grow(ring_, bytes); }
  std::byte* landing(std::size_t bytes) { return grow(landing_, bytes); }
  std::byte* whole(std::size_t bytes) { return grow(whole_, bytes); }
  std::byte* heads(std::size_t bytes) { return grow(heads_, bytes); }
  std::byte* self(std::size_t bytes) { return grow(self_, bytes); }
  /// Never freed: MPI may still use them (a broken group whose requests never completed).
  void abandon();

 private:
  struct Buffer {
    std::unique_ptr<std::byte[]> bytes;
    std::size_t size = 0;
  };
  static std::byte* grow(Buffer& buf, std::size_t need);
  Buffer ring_, landing_, whole_, heads_, self_;
};

/// Staging slots for a call: enough for every pool worker to hold one while
/// sends are in flight, at most a quarter of the remote volume (or all of it
/// when that is smaller than the minimum).
std::int64_t staging_slots(std::int64_t remote_rows, std::int64_t row_bytes, const Tiling& tiling);

/// What the communicator hands a call's exchange.
struct ExchangeSetup {
  int rank = 0;
  int size = 1;
  Transport* transport = nullptr;        ///< the group's; its count check was started by meet
  std::unique_ptr<Transfers> transfers;  ///< this call's, on that transport
  std::chrono::milliseconds timeout{};
  std::atomic<bool>* broken = nullptr;  ///< the communicator's
  const MessagePolicy* messages = nullptr;
  bool carry = false;   ///< this call's headers travel in heads (D56), the same on every rank
  bool agreed = false;  ///< the count check already passed (FUNNELED: meet waited for it)
  Staging* staging = nullptr;
  std::byte* ring = nullptr;  ///< the send ring: ring_slots tiles
  std::int64_t ring_slots = 0;
};

/// What a communicator over a transport keeps for its calls.
struct ExchangeGroup {
  int rank = 0;
  int size = 1;
  Transport* transport = nullptr;
  std::chrono::milliseconds timeout{};
  std::atomic<bool>* broken = nullptr;  ///< set by a call that fails or times out
  const MessagePolicy* messages = nullptr;
  Staging* staging = nullptr;
};

/// Workspace a call should get on a transport (the send ring's slots), and the least it runs with (one tile).
std::size_t exchange_workspace_bytes(const Plan& plan, const Tiling& tiling);
std::size_t exchange_min_workspace_bytes(const Plan& plan, const Tiling& tiling);

/// meet's part every transport shares (message_exchange_start.cpp): sizes
/// the send ring from the workspace, starts the count check (carried after a
/// small call, D56) and hands out the call's exchange. Where workers may not
/// call the transport, the check completes here first. Throws gmmav::Error.
std::unique_ptr<Exchange> start_exchange(const CallInfo& mine, std::span<std::byte> workspace, const ExchangeGroup& g);

class MessageExchange final : public Exchange {
 public:
  MessageExchange(const CallInfo& mine, ExchangeSetup setup);
  ~MessageExchange() override;

  void* rows_for(int dest, int j, std::int64_t first, std::int64_t rows) override;
  void rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) override;
  std::int64_t early_rows(int dest) const override { return sends_.early_rows(dest); }
  void progress() noexcept override;
  void wait_agreed() override;
  bool agreed() const override { return agreed_.load(std::memory_order_acquire); }
  /// FUNNELED: only the orchestrating thread may call MPI, so it must poll
  /// (GMMAV_MPI_PROGRESS=0 is ignored there: nobody else could free a slot).
  bool needs_poll() const override { return !workers_drive_; }
  void poll() override { drive(/*wait_turn=*/true); }
  bool reports_arrivals() const override { return pending_rows_ != nullptr; }
  void wait_received(int j) override;
  void finish() override;
  void abort(const std::string& reason) noexcept override;

 private:
  enum class HeadState : std::uint8_t { none, waiting, queued };  // waiting: for its rows (D56)
  // A message queued for MPI_Isend (queue_mu_).
  struct PendingSend {
    Purpose purpose = Purpose::send_tile;  // send_tile, send_whole or send_head
    int dest = 0;
    const std::byte* data = nullptr;
    std::int64_t rows = 0;   // send_tile, send_whole
    std::int64_t bytes = 0;  // send_head
    int expert = 0;          // send_tile: its tag's (expert, tile)
    std::int64_t tile = 0;
    int slot = -1;  // send_tile: its ring slot
  };
  // A receive that completed (or rows of this rank's own): bytes to copy into y.
  struct Landed {
    const std::byte* from;
    std::int64_t y_at, bytes;
    int expert;
  };

  // message_exchange.cpp: the engine's side.
  void init_heads(const CallInfo& mine, Staging& staging, std::int64_t message_bytes);
  void post_head_receives();
  std::byte* wait_for_slot(std::unique_lock<std::mutex>& lk, std::int64_t rows);
  void whole_rows_done(int dest, std::int64_t rows);
  void tile_rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where);
  void own_rows_done(int j, std::int64_t first, std::int64_t rows, const void* where);
  void arrived(int j, std::int64_t rows);
  [[noreturn]] void fail_check_timeout() const;
  [[noreturn]] void fail_no_progress(const std::string& waiting_for) const;
  bool may_drive() const { return workers_drive_ || std::this_thread::get_id() == owner_; }
  std::chrono::steady_clock::time_point last_progress() const;
  void made_progress();

  // message_exchange_progress.cpp: driving MPI.
  void drive(bool wait_turn);
  bool drive_locked();
  bool advance_check();
  bool funneled_stuck();
  void start_sends(bool agreed);
  void test_requests();
  void check_received(std::span<const Completed> done) const;
  void on_agreed();
  void post_receives(int s);
  void land_all_from(int s, const std::byte* from);
  void copy_landed();

  // message_exchange_heads.cpp: heads (D56).
  void head_in(int src, const std::byte* head);
  void release_heads();
  void queue_waiting_head(int d, std::int64_t carried);
  bool own_heads_sent() noexcept;

  Transport& transport_;
  bool carry_;
  int me_, W_, e_;
  CountCheck& check_;
  std::chrono::milliseconds timeout_;
  std::atomic<bool>* broken_;  // the communicator's: set by pool workers and the rank's thread alike
  std::int64_t row_bytes_;
  std::int64_t tile_rows_;
  const MessagePlan sends_;     // this rank's messages to each peer
  const MessagePlan receives_;  // and from each peer
  std::byte* y_;
  std::byte* area_;     // the communicator's (Staging::whole): heads and whole messages, as sends_ lays them out
  std::byte* landing_;  // the communicator's: receives land here, as receives_ lays them out, then go to y
  std::vector<std::int64_t> recv_offset_;                    // [s*e + j] rows into y
  std::unique_ptr<std::atomic<std::int64_t>[]> whole_left_;  // [d]: rows of d's whole message not yet written
  // Heads (carry_).
  std::vector<HeadState> head_state_;    // [d] (queue_mu_)
  std::atomic<int> heads_waiting_{0};    // heads in state waiting
  std::byte* heads_ = nullptr;           // the communicator's: room for every peer's head
  std::vector<std::int64_t> head_rows_;  // [s]: rows s's head carried
  std::byte* self_ = nullptr;            // the communicator's: this rank's own rows until agreed
  std::int64_t self_bytes_ = 0;
  std::vector<Landed> self_written_;  // own rows written before the agreement (queue_mu_)
  bool self_flushed_ = false;         // the agreement took self_written_ (queue_mu_)
  std::int64_t tag_stride_ = 1;
  std::unique_ptr<Transfers> transfers_;  // receives and sends in flight (transport_.lock())
  std::vector<Landed> landed_;            // completed receives not yet copied into y (the driving thread's)
  std::mutex queue_mu_;                   // guards queue_, ring_, aborted_, stuck_before_agreement_
  std::vector<PendingSend> queue_;
  SendRing ring_;
  std::condition_variable slot_freed_;
  int waiting_for_slot_ = 0;  // workers blocked in rows_for
  std::mutex poll_mu_;
  bool aborted_ = false;
  bool stuck_before_agreement_ = false;
  bool workers_drive_ = false;                          // pool workers call MPI (thread level >= SERIALIZED)
  std::thread::id owner_ = std::this_thread::get_id();  // the thread that called meet
  std::atomic<bool> agreed_{false};                     // the count check passed: receives posted, sends may start
  std::atomic<bool> refused_{false};                    // the count check failed: refusal_ is its error
  std::exception_ptr refusal_;
  std::chrono::steady_clock::time_point check_deadline_;
  std::exception_ptr worker_error_;                                  // an MPI failure inside progress() (noexcept)
  std::unique_ptr<std::atomic<std::int64_t>[]> pending_rows_;        // [j]: dispatch op only (wait_received)
  std::atomic<std::chrono::steady_clock::rep> last_progress_ns_{0};  // last completed request
};

}  // namespace gmmav::comm
