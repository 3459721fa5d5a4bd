// The MPI backend: one rank per process, on one machine or many.
//
// meet: starts the cross-rank count check (mpi_count_check.hpp), which the
// threads that drive MPI advance while the engine computes; once it passed,
// receives are posted for every incoming row tile and queued sends start.
// Until then tiles for remote ranks wait in staging and nothing is written to
// this rank's outputs. Tiles for remote ranks are computed into a bounded ring
// of tile-sized staging slots (as many as the caller's workspace size allows:
// about a quarter of the send volume for large calls, never the whole gmmY)
// and sent as soon as each is written; a slot is reused once its send
// completed. Tiles for this rank go straight into y.
// MPI never holds a pointer into the caller's memory (D47): the ring and
// the receives' landing area belong to the communicator, and a received tile
// is copied into y (the unpermute is only offsets) by the thread that saw its
// receive complete. A send cannot be cancelled, nor a receive matched before a
// failure, so after a failed call MPI may still read or write those buffers:
// the communicator then keeps them, with the call's unfinished requests, and
// refuses every later call (the group is broken). Nothing reaches y, mmY or
// the workspace after the call threw.
// A peer whose rows of the call fit in one such message (a small call: a
// decode step) gets them all in one message, written in place in a staging
// area and sent when its last tile is in: per-message costs, not bytes, are
// what such a call pays.
// Small calls after a small call (D56): the count check travels in those
// messages. Each peer gets one "head" (on a dup of the group's communicator):
// this rank's header, its counts for the peer, and its rows for the peer when
// they fit, sent when the last of them is written. The check runs on the
// heads that arrived, in the communicator's room for them; the rows reach y
// only once it passed. This rank's own rows and mmY wait in staging, not for
// the verdict; a head whose rows are not written when this rank must wait for
// anything leaves without them (the rows follow as the peer's one message),
// so no rank's header waits on a rank that waits. Per call and peer: one
// message, as in a plain AlltoAllv, instead of the check's own round(s) first.
// A tile for a peer on another machine goes in messages below Open MPI's TCP
// eager limit (MessagePolicy): a larger message waits for a rendezvous round
// trip, which needs the receiver inside MPI — at its next tile boundary — and
// crosses a link whose queue in the other direction is full of the peer's own
// tiles; the wire then idles (docs/performance.md "Across hosts"). Eager
// messages go straight into the socket and the kernel moves them while both
// ranks compute. Every message of a tile carries the tile's tag; MPI matches
// messages between two ranks with one tag in the order they were sent.
// MPI's progress is weak, so someone must call MPI while the pool computes.
// With MPI_THREAD_SERIALIZED or better the pool worker that finished a tile
// does it, at that tile boundary: it starts the tile's send and tests the
// call's requests (one non-blocking pass), so no other thread wakes up and
// takes a core from the GEMMs (docs/performance.md, "MPI progress"). Under
// MPI_THREAD_FUNNELED only the orchestrating thread may call MPI: it polls
// while the pool computes, as the fallback.
#include "comm/mpi_communicator.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "comm/message_plan.hpp"
#include "comm/mpi_count_check.hpp"
#include "comm/mpi_machines.hpp"
#include "comm/mpi_runtime.hpp"
#include "common/config.hpp"
#include "common/deadline.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

// GMMAV_MPI_PROGRESS=0: nobody drives MPI while the pool computes (sends start
// when the staging ring is full, and in finish) — the "without progress" half
// of an overlap measurement.
// Read once, by create_mpi: a bad value fails the group's creation, not a call.
bool progress_enabled() {
  static const bool on = config::mpi_progress();
  return on;
}

struct PendingSend {
  int dest;
  int j;
  std::int64_t first;
  const void* data;
  std::int64_t rows;
  int slot;
};

// What a request in flight is for: a send from a ring slot, or a receive of
// `bytes` into the landing area that belong at byte `y_at` of y.
constexpr int kReceive = -1;  // InFlight::slot of a receive
constexpr int kNoSlot = -2;   // InFlight::slot of a send from the whole-peer area (no ring slot)
constexpr int kHead = -3;     // InFlight::slot / PendingSend::slot of a head (D56), sent or received
struct InFlight {
  int slot = kReceive;  // the send's ring slot, kNoSlot, or kReceive
  std::int64_t landing_at = 0, y_at = 0, bytes = 0;
  int expert = 0;       // a receive's local expert
  int whole_from = -1;  // a receive of all of this source's rows (one block per expert), or a head's source
};

// A receive that completed: its bytes go from the landing area (or a head) into y.
struct Landed {
  const std::byte* from;
  std::int64_t y_at, bytes;
  int expert;
};

// Memory MPI touches during a call, owned by the communicator (D47): the
// send ring and the landing area of receives. Grown when a call needs more;
// kept between calls (no page faults per call).
class Staging {
 public:
  std::byte* ring(std::size_t bytes) { return grow(ring_, ring_bytes_, bytes); }
  std::byte* landing(std::size_t bytes) { return grow(landing_, landing_bytes_, bytes); }
  std::byte* whole(std::size_t bytes) { return grow(whole_, whole_bytes_, bytes); }
  std::byte* heads(std::size_t bytes) { return grow(heads_, heads_bytes_, bytes); }
  std::byte* self(std::size_t bytes) { return grow(self_, self_bytes_, bytes); }
  // Never freed: MPI may still use them (a broken group whose requests never completed).
  void abandon() {
    (void)ring_.release();
    (void)landing_.release();
    (void)whole_.release();
    (void)heads_.release();
    (void)self_.release();
  }

 private:
  static std::byte* grow(std::unique_ptr<std::byte[]>& buf, std::size_t& have, std::size_t need) {
    if (need > have) {
      buf.reset();
      buf = std::make_unique_for_overwrite<std::byte[]>(need);
      have = need;
    }
    return buf.get();
  }
  std::unique_ptr<std::byte[]> ring_, landing_, whole_, heads_, self_;
  std::size_t ring_bytes_ = 0, landing_bytes_ = 0, whole_bytes_ = 0, heads_bytes_ = 0, self_bytes_ = 0;
};

// Where a failed call's unfinished requests go (the communicator's).
class Quarantine {
 public:
  virtual void quarantine(std::vector<MPI_Request> requests) noexcept = 0;

 protected:
  ~Quarantine() = default;
};

// Staging slots for a call: enough for every pool worker to hold one while
// sends are in flight, at most a quarter of the remote volume (or all of it
// when that is smaller than the minimum).
std::int64_t staging_slots(std::int64_t remote_rows, std::int64_t row_bytes, const Tiling& tiling) {
  const std::int64_t tile_rows = tiling.tile_rows;
  const std::int64_t remote_tiles = (remote_rows + tile_rows - 1) / tile_rows;
  const std::int64_t quarter = remote_rows * row_bytes / 4 / (tile_rows * row_bytes);
  const std::int64_t minimum = 4 * std::int64_t{tiling.compute_threads};
  return std::min(remote_tiles, std::max(minimum, quarter));
}

class MpiExchange final : public Exchange {
 public:
  MpiExchange(MPI_Comm comm, int rank, int size, const CallInfo& mine, MPI_Datatype row_type, std::byte* staging,
              std::int64_t staging_slots, std::byte* landing, Staging& staging_area, MpiCountCheck& check, bool agreed,
              std::chrono::milliseconds timeout, std::atomic<bool>* broken, Quarantine& quarantine, const MessagePolicy& messages,
              bool carry, MPI_Comm heads_comm)
      : comm_(comm),
        heads_comm_(heads_comm),
        carry_(carry),
        me_(rank),
        W_(size),
        e_(mine.local_experts),
        row_type_(row_type),
        check_(check),
        timeout_(timeout),
        broken_(broken),
        quarantine_(quarantine),
        landing_(landing),
        messages_(messages) {
    row_bytes_ = mine.row_width * static_cast<std::int64_t>(element_size(mine.dtype));
    tile_rows_ = mine.tiling.tile_rows;
    y_ = static_cast<std::byte*>(mine.y);
    staging_ = staging;
    for (std::int64_t i = staging_slots; i-- > 0;) free_slots_.push_back(static_cast<int>(i));
    slot_messages_.assign(static_cast<std::size_t>(staging_slots), 0);
    slot_unwritten_.assign(static_cast<std::size_t>(staging_slots), 0);
    // Peers whose rows go as one message: where they sit in the whole-peer area (expert blocks in order).
    whole_at_.assign(static_cast<std::size_t>(W_), -1);
    whole_rows_.assign(static_cast<std::size_t>(W_), 0);
    whole_block_.assign(mine.send_counts.size(), 0);
    whole_left_ = std::make_unique<std::atomic<std::int64_t>[]>(static_cast<std::size_t>(W_));
    // Carrying (D56): every peer's head — this rank's header, its counts for
    // the peer, and its rows when they fit — sits in front of those rows.
    const bool column = MpiCountCheck::carries_column(e_);
    prefix_bytes_ = static_cast<std::int64_t>(sizeof(std::int64_t)) * (MpiCountCheck::kHeader + 1 + (column ? e_ : 0));
    head_at_.assign(static_cast<std::size_t>(W_), -1);
    head_state_.assign(static_cast<std::size_t>(W_), HeadState::none);
    std::int64_t whole_at = 0;
    bool sends_tiles = false;  // some peer's rows go tile by tile
    for (int d = 0; d < W_; ++d) {
      if (d == me_) continue;
      std::int64_t rows = 0;
      for (int j = 0; j < e_; ++j) {
        whole_block_[static_cast<std::size_t>(d * e_ + j)] = rows;
        rows += mine.send_counts[static_cast<std::size_t>(d * e_ + j)];
      }
      const bool one = messages.one_message(rows * row_bytes_);
      sends_tiles = sends_tiles || (rows > 0 && !one);
      if (carry_) {
        whole_at = (whole_at + 63) / 64 * 64;
        head_at_[static_cast<std::size_t>(d)] = whole_at;
        whole_at += prefix_bytes_;
        head_state_[static_cast<std::size_t>(d)] =
            one && prefix_bytes_ + rows * row_bytes_ <= messages.bytes ? HeadState::waiting : HeadState::queued;
      }
      if (!one) continue;
      whole_at_[static_cast<std::size_t>(d)] = whole_at;
      whole_rows_[static_cast<std::size_t>(d)] = rows;
      whole_left_[static_cast<std::size_t>(d)].store(rows, std::memory_order_relaxed);
      whole_at += rows * row_bytes_;
    }
    whole_ = staging_area.whole(static_cast<std::size_t>(whole_at));
    if (carry_) {
      head_room_ = (std::max(messages.bytes, static_cast<std::int64_t>(sizeof(std::int64_t)) *
                                                 (MpiCountCheck::kHeader + 1 + MpiCountCheck::kMaxCarriedColumn)) +
                    63) /
                   64 * 64;
      heads_ = staging_area.heads(static_cast<std::size_t>(head_room_ * W_));
      // This rank's own rows wait in staging, not for the agreement: a tile
      // for this rank is often in the same GEMM as the peers' tiles whose
      // heads the agreement needs (up to 4 heads' worth; larger ones wait).
      std::int64_t own = 0;
      self_block_.assign(static_cast<std::size_t>(e_), 0);
      for (int j = 0; j < e_; ++j) {
        self_block_[static_cast<std::size_t>(j)] = own;
        own += mine.send_counts[static_cast<std::size_t>(me_ * e_ + j)];
      }
      if (own > 0 && own * row_bytes_ <= 4 * messages.bytes) {
        self_bytes_ = own * row_bytes_;
        self_ = staging_area.self(static_cast<std::size_t>(self_bytes_));
      }
      // A rank with tiles for some peer carries no rows at all: its heads
      // leave at once, so no peer's agreement (and tiles) waits for its GEMMs.
      if (sends_tiles)
        for (HeadState& h : head_state_)
          if (h == HeadState::waiting) h = HeadState::queued;
      head_rows_.assign(static_cast<std::size_t>(W_), 0);
      for (int d = 0; d < W_; ++d) {
        if (d == me_) continue;
        std::vector<std::int64_t> prefix(check_.header(), check_.header() + MpiCountCheck::kHeader);
        prefix.push_back(0);  // rows carried: set when they are
        if (column)
          for (int j = 0; j < e_; ++j) prefix.push_back(mine.send_counts[static_cast<std::size_t>(d * e_ + j)]);
        std::memcpy(whole_ + head_at_[static_cast<std::size_t>(d)], prefix.data(), static_cast<std::size_t>(prefix_bytes_));
        if (head_state_[static_cast<std::size_t>(d)] == HeadState::waiting)
          heads_waiting_.fetch_add(1, std::memory_order_relaxed);
        else  // no rows to carry: the head leaves at once
          queue_.push_back({d, 0, 0, whole_ + head_at_[static_cast<std::size_t>(d)], prefix_bytes_, kHead});
      }
    }
    message_rows_.resize(static_cast<std::size_t>(W_));
    for (int p = 0; p < W_; ++p) {
      const std::int64_t m = messages.rows(p, row_bytes_);
      message_rows_[static_cast<std::size_t>(p)] = m == 0 || m > tile_rows_ ? tile_rows_ : m;
    }
    recv_counts_ = mine.recv_counts;
    recv_offset_ = recv_offsets(mine);
    if (mine.op == Op::dispatch) {  // rows of each expert's group still to arrive (wait_received)
      const std::vector<std::int64_t> rows = group_rows(mine);
      pending_rows_ = std::make_unique<std::atomic<std::int64_t>[]>(rows.size());
      for (std::size_t j = 0; j < rows.size(); ++j) pending_rows_[j].store(rows[j], std::memory_order_relaxed);
    }
    workers_drive_ = mpi::thread_level_at_least_serialized();
    const auto now = std::chrono::steady_clock::now();
    check_deadline_ = deadline_after(timeout_, now);
    last_progress_ns_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    if (carry_) {  // every peer's head, into the communicator's room for it
      auto lk = mpi::lock();
      for (int src = 0; src < W_; ++src) {
        if (src == me_) continue;
        MPI_Request req;
        mpi::check(MPI_Irecv(heads_ + src * head_room_, static_cast<int>(head_room_), MPI_BYTE, src, 0, heads_comm_, &req),
                   "MPI_Irecv");
        requests_.push_back(req);
        in_flight_.push_back({.slot = kHead, .landing_at = src * head_room_, .whole_from = src});
      }
    }
    if (agreed) {
      auto lk = mpi::lock();
      on_agreed();
    }
  }

  // A call that did not finish (it threw, or a worker failed) may leave
  // requests in MPI. Receives not yet matched are cancelled; what is left
  // (sends, receives matched before the failure) goes to the communicator,
  // which keeps the staging they use. Runs after the call's error was thrown,
  // so a receive completing here is not copied into y.
  ~MpiExchange() override {
    if (requests_.empty()) return;
    if (refused_.load(std::memory_order_acquire) && own_heads_sent()) return;
    broken_->store(true, std::memory_order_relaxed);
    try {
      auto lk = mpi::lock();
      for (std::size_t i = 0; i < requests_.size(); ++i)
        if (requests_[i] != MPI_REQUEST_NULL &&
            (in_flight_[i].slot == kReceive || (in_flight_[i].slot == kHead && in_flight_[i].whole_from >= 0)))
          MPI_Cancel(&requests_[i]);  // fails harmlessly on a matched receive
      int done = 0;
      indices_.resize(requests_.size());
      MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &done, indices_.data(), MPI_STATUSES_IGNORE);
    } catch (...) {  // mpi::lock cannot fail in practice; a destructor must not throw
    }
    std::erase(requests_, MPI_REQUEST_NULL);
    quarantine_.quarantine(std::move(requests_));
  }

  // Called by pool workers: where a tile goes. Rows for this rank go straight
  // into y, once the count check passed. Rows for a peer take a slot of the
  // ring; when all are in use the worker drives MPI itself until a send
  // completes (or, under FUNNELED, waits for the orchestrating thread's
  // polling to free one).
  void* rows_for(int dest, int j, std::int64_t first, std::int64_t rows) override {
    if (dest == me_) {
      if (self_ != nullptr && !agreed_.load(std::memory_order_acquire))  // copied into y once agreed (D56)
        return self_ + (self_block_[static_cast<std::size_t>(j)] + first) * row_bytes_;
      wait_agreed();
      return y_ + (recv_offset_[static_cast<std::size_t>(me_ * e_ + j)] + first) * row_bytes_;
    }
    if (refused_.load(std::memory_order_acquire)) std::rethrow_exception(refusal_);
    if (const std::int64_t at = whole_at_[static_cast<std::size_t>(dest)]; at >= 0)
      return whole_ + at + (whole_block_[static_cast<std::size_t>(dest * e_ + j)] + first) * row_bytes_;
    std::unique_lock lk(queue_mu_);
    ++waiting_for_slot_;
    if (!may_drive()) {
      slot_freed_.wait(lk, [&] { return !free_slots_.empty() || aborted_; });
    } else {
      mpi::Backoff backoff;
      while (free_slots_.empty() && !aborted_) {
        lk.unlock();
        release_heads();  // nothing may wait on this rank's rows for its header (D56)
        drive(/*wait_turn=*/true);
        if (refused_.load(std::memory_order_acquire)) {
          lk.lock();
          --waiting_for_slot_;
          std::rethrow_exception(refusal_);
        }
        // Until the check passed nothing can leave: the deadline is the check's.
        const auto now = std::chrono::steady_clock::now();
        const bool stuck =
            agreed_.load(std::memory_order_acquire) ? exceeds(now - last_progress(), timeout_) : now > check_deadline_;
        if (!stuck) backoff.pause();
        lk.lock();
        if (stuck && free_slots_.empty()) {
          aborted_ = true;
          broken_->store(true, std::memory_order_relaxed);
          stuck_before_agreement_ = !agreed_.load(std::memory_order_acquire);
        }
      }
    }
    --waiting_for_slot_;
    if (aborted_) {
      if (stuck_before_agreement_) fail_check_timeout();
      fail(Errc::timeout, "group",
           "rank {} timed out after {} ms: its sends made no progress (a peer died or stopped); the group is broken, recreate it",
           me_, timeout_.count());
    }
    const int slot = free_slots_.back();
    free_slots_.pop_back();
    slot_unwritten_[static_cast<std::size_t>(slot)] = rows;
    return staging_ + static_cast<std::int64_t>(slot) * tile_rows_ * row_bytes_;
  }

  // A tile is written: queue its send and, at this tile boundary, drive MPI.
  void rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) override {
    if (dest != me_ && whole_at_[static_cast<std::size_t>(dest)] >= 0) {
      // The peer's last rows: its one message may go.
      if (whole_left_[static_cast<std::size_t>(dest)].fetch_sub(rows, std::memory_order_acq_rel) == rows) {
        const auto d = static_cast<std::size_t>(dest);
        std::lock_guard lk(queue_mu_);
        if (head_state_[d] == HeadState::waiting) {  // the header goes with the rows (D56)
          queue_waiting_head(dest, whole_rows_[d]);
        } else {
          queue_.push_back({dest, 0, 0, whole_ + whole_at_[d], whole_rows_[d], kNoSlot});
        }
      }
    } else if (dest != me_) {  // a tile, or its next rows (early_rows): their messages may go
      const int slot = static_cast<int>((static_cast<std::byte*>(where) - staging_) / (tile_rows_ * row_bytes_));
      const std::int64_t per = message_rows_[static_cast<std::size_t>(dest)];
      std::lock_guard lk(queue_mu_);
      slot_unwritten_[static_cast<std::size_t>(slot)] -= rows;
      slot_messages_[static_cast<std::size_t>(slot)] += static_cast<int>((rows + per - 1) / per);
      queue_.push_back({dest, j, first, where, rows, slot});
    } else if (self_ != nullptr && where >= self_ && where < self_ + self_bytes_) {  // staged rows of this rank's own
      const Landed l{static_cast<const std::byte*>(where),
                     (recv_offset_[static_cast<std::size_t>(me_ * e_ + j)] + first) * row_bytes_, rows * row_bytes_, j};
      bool now = false;
      {
        std::lock_guard lk(queue_mu_);
        now = self_flushed_;  // the agreement came while they were written: nobody else copies them
        if (!now) self_written_.push_back(l);
      }
      if (now) {
        std::memcpy(y_ + l.y_at, l.from, static_cast<std::size_t>(l.bytes));
        if (pending_rows_) pending_rows_[static_cast<std::size_t>(j)].fetch_sub(rows, std::memory_order_acq_rel);
      }
    } else if (pending_rows_) {
      pending_rows_[static_cast<std::size_t>(j)].fetch_sub(rows, std::memory_order_acq_rel);
    }
    if (may_drive() && progress_enabled()) drive(/*wait_turn=*/false);
  }

  // A split peer's tile may leave message by message as its rows are written.
  std::int64_t early_rows(int dest) const override {
    if (dest == me_ || whole_at_[static_cast<std::size_t>(dest)] >= 0) return 0;
    const std::int64_t per = message_rows_[static_cast<std::size_t>(dest)];
    return per < tile_rows_ ? per : 0;
  }

  // A shared-expert tile finished: a tile boundary like any other.
  // Only std::mutex::lock in the handler could still throw (a bug: terminating is right).
  void progress() noexcept override {  // NOLINT(bugprone-exception-escape)
    try {
      if (!may_drive() || !progress_enabled()) return;
      drive(/*wait_turn=*/false);
    } catch (...) {  // an MPI failure: finish() reports it
      std::lock_guard lk(queue_mu_);
      if (!worker_error_) worker_error_ = std::current_exception();
    }
  }

  // Drives MPI until the count check is in (throws its error if it failed,
  // a timeout at the check's deadline).
  void wait_agreed() override {
    if (agreed_.load(std::memory_order_acquire)) return;
    release_heads();  // this rank waits: its header may not wait for rows (D56)
    mpi::Backoff backoff;
    for (;;) {
      if (may_drive()) drive(/*wait_turn=*/true);
      if (agreed_.load(std::memory_order_acquire)) return;
      if (refused_.load(std::memory_order_acquire)) std::rethrow_exception(refusal_);
      if (std::chrono::steady_clock::now() > check_deadline_) {
        broken_->store(true, std::memory_order_relaxed);
        fail_check_timeout();
      }
      backoff.pause();
    }
  }

  bool agreed() const override { return agreed_.load(std::memory_order_acquire); }

  // FUNNELED: only the orchestrating thread may call MPI, so it must poll
  // (GMMAV_MPI_PROGRESS=0 is ignored there: nobody else could free a slot).
  bool needs_poll() const override { return !workers_drive_; }

  void poll() override { drive(/*wait_turn=*/true); }

  // One non-blocking pass: advance the count check, start queued sends, test
  // every request, free the slots of completed sends. One thread at a time;
  // a worker that finds another one driving goes back to its GEMMs
  // (wait_turn=false).
  void drive(bool wait_turn) {
    std::unique_lock one(poll_mu_, std::defer_lock);
    if (wait_turn) {
      one.lock();
    } else if (!one.try_lock()) {
      return;
    }
    do {
      const bool agreed = drive_locked();
      // Outside MPI's lock: copying a tile into y takes a while.
      for (const Landed& l : landed_) {
        std::memcpy(y_ + l.y_at, l.from, static_cast<std::size_t>(l.bytes));
        if (pending_rows_)
          pending_rows_[static_cast<std::size_t>(l.expert)].fetch_sub(l.bytes / row_bytes_, std::memory_order_acq_rel);
      }
      landed_.clear();
      if (!agreed) break;
      std::lock_guard lk(queue_mu_);
      if (queue_.empty()) break;
    } while (true);
  }

  // False while the count check is still out (nothing but heads can be sent yet).
  bool drive_locked() {
    auto lk = mpi::lock();
    if (!agreed_.load(std::memory_order_relaxed)) {
      if (refused_.load(std::memory_order_relaxed)) return false;
      if (carry_) {  // heads out and in: the check waits for every peer's
        start_sends(/*agreed=*/false);
        test_requests();
      }
      try {
        if (!check_.advance()) return false;
      } catch (const Error& e) {
        if (e.code() == Errc::internal) throw;  // MPI itself failed
        // The check refused the call, with the same verdict on every rank:
        // nothing was sent or posted but heads, which every peer has posted
        // for (the destructor sees this rank's leave), so the group stays usable.
        refusal_ = std::current_exception();
        refused_.store(true, std::memory_order_release);
        if (carry_) {
          release_heads();
          start_sends(/*agreed=*/false);
        }
        slot_freed_.notify_all();
        return false;
      }
      on_agreed();
    }
    start_sends(/*agreed=*/true);
    if (requests_.empty()) return true;
    // FUNNELED: workers blocked on a staging slot while nothing moves for the
    // timeout means a peer is gone. Wake them with an error (never throw from
    // here: the pool's job is still running on this thread's stack).
    if (!workers_drive_ && exceeds(std::chrono::steady_clock::now() - last_progress(), timeout_)) {
      bool stuck = false;
      {
        std::lock_guard q(queue_mu_);
        stuck = waiting_for_slot_ > 0;
        if (stuck) aborted_ = true;
      }
      if (stuck) {
        broken_->store(true, std::memory_order_relaxed);
        slot_freed_.notify_all();
        return true;
      }
    }
    test_requests();
    return true;
  }

  // Starts the queued sends (caller holds mpi::lock()); before the check
  // passed only heads (D56), which land in the peer's room for them, not in y.
  void start_sends(bool agreed) {
    std::vector<PendingSend> sends;
    {
      std::lock_guard q(queue_mu_);
      if (agreed) {
        sends.swap(queue_);
      } else {
        const auto head =
            std::stable_partition(queue_.begin(), queue_.end(), [](const PendingSend& p) { return p.slot == kHead; });
        sends.assign(queue_.begin(), head);
        queue_.erase(queue_.begin(), head);
      }
    }
    for (const PendingSend& s : sends) {
      if (s.slot == kHead) {  // rows = the head's bytes
        MPI_Request req;
        mpi::check(MPI_Isend(s.data, static_cast<int>(s.rows), MPI_BYTE, s.dest, 0, heads_comm_, &req), "MPI_Isend");
        requests_.push_back(req);
        in_flight_.push_back({.slot = kHead});
        continue;
      }
      if (s.slot == kNoSlot) {  // all of the peer's rows, tag 0: no other message goes to it in this call
        MPI_Request req;
        mpi::check(MPI_Isend(s.data, static_cast<int>(s.rows), row_type_, s.dest, 0, comm_, &req), "MPI_Isend");
        requests_.push_back(req);
        in_flight_.push_back({.slot = kNoSlot});
        continue;
      }
      const std::int64_t per = message_rows_[static_cast<std::size_t>(s.dest)];
      for (std::int64_t at = 0; at < s.rows; at += per) {  // in order: the receiver matches them so
        MPI_Request req;
        mpi::check(MPI_Isend(static_cast<const std::byte*>(s.data) + at * row_bytes_,
                             static_cast<int>(std::min(per, s.rows - at)), row_type_, s.dest, tag(s.j, s.first), comm_, &req),
                   "MPI_Isend");
        requests_.push_back(req);
        in_flight_.push_back({.slot = s.slot});
      }
    }
  }

  // One MPI_Testsome over the call's requests (caller holds mpi::lock()):
  // completed sends free their slots, completed receives are queued for the
  // copy into y, a peer's head goes to the count check.
  void test_requests() {
    if (requests_.empty()) return;
    int done = 0;
    indices_.resize(requests_.size());
    statuses_.resize(requests_.size());
    const int rc = MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &done, indices_.data(), statuses_.data());
    if (rc != MPI_SUCCESS && rc != MPI_ERR_IN_STATUS) mpi::check(rc, "MPI_Testsome");
    if (done <= 0 || done == MPI_UNDEFINED) return;
    // A receive must get exactly the bytes it was posted for: anything else
    // means the two ranks cut their messages differently, and rows would land
    // in the wrong place. Never silent (issue 29).
    std::string wrong;
    for (int i = 0; i < done && wrong.empty(); ++i) {
      const MPI_Status& st = statuses_[static_cast<std::size_t>(i)];
      const InFlight& f = in_flight_[static_cast<std::size_t>(indices_[static_cast<std::size_t>(i)])];
      const int error = rc == MPI_ERR_IN_STATUS ? st.MPI_ERROR : MPI_SUCCESS;
      int got = 0;
      if (f.slot == kReceive && error == MPI_SUCCESS) MPI_Get_count(&st, MPI_BYTE, &got);
      if (f.slot == kReceive && (error != MPI_SUCCESS || got != f.bytes)) {
        wrong = fmt::format(
            "rank {} expected a message of {} bytes from rank {} (tag {}), got {}: the ranks cut the call's rows into "
            "different messages",
            me_, f.bytes, st.MPI_SOURCE, st.MPI_TAG, error == MPI_SUCCESS ? std::to_string(got) : mpi::error_string(error));
      } else if (error != MPI_SUCCESS) {
        wrong = fmt::format("rank {}: a transfer failed: {}", me_, mpi::error_string(error));
      }
    }
    if (!wrong.empty()) {
      drop_completed(done);  // the destructor must not see completed requests
      fail(Errc::internal, "group", "{}; the group is broken, recreate it", wrong);
    }
    last_progress_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    bool freed = false;
    {
      std::lock_guard q(queue_mu_);
      for (int i = 0; i < done; ++i) {
        const InFlight& f = in_flight_[static_cast<std::size_t>(indices_[static_cast<std::size_t>(i)])];
        if (f.slot >= 0) {
          const auto slot = static_cast<std::size_t>(f.slot);
          if (--slot_messages_[slot] == 0 && slot_unwritten_[slot] == 0) {  // the tile's last message
            free_slots_.push_back(f.slot);
            freed = true;
          }
        } else if (f.slot == kHead) {
          if (f.whole_from >= 0) head_in(f.whole_from, heads_ + f.landing_at);
        } else if (f.whole_from >= 0) {
          land_all_from(f.whole_from, landing_ + f.landing_at);
        } else if (f.slot == kReceive) {
          landed_.push_back({landing_ + f.landing_at, f.y_at, f.bytes, f.expert});
        }
      }
    }
    if (freed) slot_freed_.notify_all();
    drop_completed(done);
  }

  // Removes the requests MPI completed (MPI_REQUEST_NULL) with what they were
  // for; the destructor then never sees a completed one.
  void drop_completed(int done) {
    if (done <= 0 || done == MPI_UNDEFINED) return;
    std::size_t out = 0;
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      if (requests_[i] == MPI_REQUEST_NULL) continue;
      requests_[out] = requests_[i];
      in_flight_[out] = in_flight_[i];
      ++out;
    }
    requests_.resize(out);
    in_flight_.resize(out);
  }

  // All of source s's rows of the call, one block per expert in order from
  // `from` (one message): queued for the copy into y.
  void land_all_from(int s, const std::byte* from) {
    for (int j = 0; j < e_; ++j) {
      const auto g = static_cast<std::size_t>(s * e_ + j);
      const std::int64_t bytes = recv_counts_[g] * row_bytes_;
      if (bytes > 0) landed_.push_back({from, recv_offset_[g] * row_bytes_, bytes, j});
      from += bytes;
    }
  }

  // Source `src`'s head arrived (caller holds mpi::lock()): its header and
  // counts for this rank go to the check; rows it carries wait for the verdict.
  void head_in(int src, const std::byte* head) {
    std::int64_t fixed[MpiCountCheck::kHeader + 1];
    std::memcpy(fixed, head, sizeof fixed);
    const std::int64_t e = fixed[0];
    const bool column = e > 0 && MpiCountCheck::carries_column(e);
    const std::int64_t prefix = static_cast<std::int64_t>(sizeof(std::int64_t)) * (MpiCountCheck::kHeader + 1 + (column ? e : 0));
    const std::int64_t rows = fixed[MpiCountCheck::kHeader];
    // Its rows are checked against this rank's row width once the shape check passed (on_agreed).
    if (rows < 0 || prefix > head_room_)
      fail(Errc::internal, "group", "rank {} got a malformed head from rank {} ({} rows)", me_, src, rows);
    std::vector<std::int64_t> counts;
    if (column) {
      counts.resize(static_cast<std::size_t>(e));
      std::memcpy(counts.data(), head + sizeof fixed, counts.size() * sizeof(std::int64_t));
    }
    head_rows_[static_cast<std::size_t>(src)] = rows;
    check_.head_arrived(src, fixed, column ? counts.data() : nullptr);
  }

  // Heads still waiting for their rows leave now, without them (the rows
  // follow as the peer's one message once the call is agreed): called before
  // this rank waits for anything, so no rank's header waits on a rank that waits.
  void release_heads() {
    if (heads_waiting_.load(std::memory_order_acquire) == 0) return;
    std::lock_guard lk(queue_mu_);
    for (int d = 0; d < W_; ++d)
      if (head_state_[static_cast<std::size_t>(d)] == HeadState::waiting) queue_waiting_head(d, 0);
  }

  // Head d, waiting for its rows, leaves with `carried` of them (all or none;
  // the receiver reads the count). Caller holds queue_mu_.
  void queue_waiting_head(int d, std::int64_t carried) {
    const auto i = static_cast<std::size_t>(d);
    std::memcpy(whole_ + head_at_[i] + MpiCountCheck::kHeader * static_cast<std::int64_t>(sizeof(std::int64_t)), &carried,
                sizeof carried);
    head_state_[i] = HeadState::queued;
    heads_waiting_.fetch_sub(1, std::memory_order_relaxed);
    queue_.push_back({d, 0, 0, whole_ + head_at_[i], prefix_bytes_ + carried * row_bytes_, kHead});
  }

  // A refused call (every rank refused it, after every head arrived): waits
  // until this rank's heads have left, so the group stays usable. False when
  // they did not within the timeout (then the group is broken).
  bool own_heads_sent() noexcept {
    try {
      mpi::Backoff backoff;
      const auto deadline = deadline_after(timeout_);
      for (;;) {
        {
          auto lk = mpi::lock();
          for (const InFlight& f : in_flight_)
            if (f.slot != kHead || f.whole_from >= 0) return false;  // only sent heads may be left
          int done = 0;
          mpi::check(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE),
                     "MPI_Testall");
          if (done) {
            requests_.clear();
            in_flight_.clear();
            return true;
          }
        }
        if (std::chrono::steady_clock::now() > deadline) return false;
        backoff.pause();
      }
    } catch (...) {
      return false;
    }
  }

  // The dispatch op: each expert's rows counted down as they reach y (a
  // landed tile once copied, a tile of this rank's own once written).
  bool reports_arrivals() const override { return pending_rows_ != nullptr; }
  void wait_received(int j) override {
    wait_agreed();
    const auto& left = pending_rows_[static_cast<std::size_t>(j)];
    mpi::Backoff backoff;
    while (left.load(std::memory_order_acquire) != 0) {
      poll();
      {
        std::lock_guard lk(queue_mu_);
        if (worker_error_) std::rethrow_exception(worker_error_);
      }
      if (left.load(std::memory_order_acquire) == 0) return;
      if (exceeds(std::chrono::steady_clock::now() - last_progress(), timeout_)) {
        broken_->store(true, std::memory_order_relaxed);
        fail(Errc::timeout, "group",
             "rank {} timed out after {} ms without progress waiting for {} rows of its expert {} (a peer died or stopped); "
             "the group is broken, recreate it",
             me_, timeout_.count(), left.load(std::memory_order_relaxed), j);
      }
      backoff.pause();
    }
  }

  void finish() override {
    wait_agreed();
    mpi::Backoff backoff;
    for (;;) {
      poll();
      {
        std::lock_guard lk(queue_mu_);
        if (worker_error_) std::rethrow_exception(worker_error_);
        if (requests_.empty() && queue_.empty()) return;
      }
      if (exceeds(std::chrono::steady_clock::now() - last_progress(), timeout_)) {
        broken_->store(true, std::memory_order_relaxed);
        fail(Errc::timeout, "group",
             "rank {} timed out after {} ms without progress waiting for {} transfers to finish (a peer died or stopped); "
             "the group is broken, recreate it",
             me_, timeout_.count(), requests_.size());
      }
      backoff.pause();
    }
  }

  void abort(const std::string&) noexcept override {
    // A refused call sent and posted nothing: the group stays usable.
    // Otherwise peers waiting for this rank's rows will time out; the group
    // cannot be reused.
    if (!refused_.load(std::memory_order_acquire)) broken_->store(true, std::memory_order_relaxed);
    {
      std::lock_guard lk(queue_mu_);
      aborted_ = true;
    }
    slot_freed_.notify_all();
  }

 private:
  // Under FUNNELED only the thread that called meet (the program's MPI
  // thread) may call MPI; it computes too ("caller computes"), so it must
  // drive MPI itself when it waits for a slot — nobody else could.
  bool may_drive() const { return workers_drive_ || std::this_thread::get_id() == owner_; }

  [[noreturn]] void fail_check_timeout() const {
    fail(Errc::timeout, "group", "rank {} timed out after {} ms {}; the group is broken, recreate it", me_, timeout_.count(),
         check_.waiting_for());
  }

  int tag(int j, std::int64_t first) const { return static_cast<int>(j * tag_stride_ + first / tile_rows_); }
  std::int64_t tiles_of(std::int64_t rows) const { return (rows + tile_rows_ - 1) / tile_rows_; }

  // The check passed (caller holds mpi::lock()): every incoming tile gets its
  // receive, into the landing area (in the order of y's remote rows); queued
  // sends may start.
  void on_agreed() {
    tag_stride_ = check_.tag_stride();
    std::int64_t landing_at = 0;
    for (int s = 0; s < W_; ++s) {
      if (s == me_) continue;
      std::int64_t from_s = 0;
      for (int j = 0; j < e_; ++j) from_s += recv_counts_[static_cast<std::size_t>(s * e_ + j)];
      if (carry_ && head_rows_[static_cast<std::size_t>(s)] > 0) {  // its head carried them: one block per expert, in order
        // The check passed: s's e is this rank's, so is its head's prefix.
        const std::int64_t prefix = prefix_bytes_;
        if (head_rows_[static_cast<std::size_t>(s)] != from_s || prefix + from_s * row_bytes_ > head_room_)
          fail(Errc::internal, "group", "rank {}: rank {}'s head carried {} rows, expected {}", me_, s,
               head_rows_[static_cast<std::size_t>(s)], from_s);
        land_all_from(s, heads_ + s * head_room_ + prefix);
        continue;
      }
      if (messages_.one_message(from_s * row_bytes_)) {  // the sender decided the same from the same counts
        MPI_Request req;
        mpi::check(MPI_Irecv(landing_ + landing_at, static_cast<int>(from_s), row_type_, s, 0, comm_, &req), "MPI_Irecv");
        requests_.push_back(req);
        in_flight_.push_back({.slot = kReceive, .landing_at = landing_at, .bytes = from_s * row_bytes_, .whole_from = s});
        landing_at += from_s * row_bytes_;
        continue;
      }
      for (int j = 0; j < e_; ++j) {
        const std::int64_t rows = recv_counts_[static_cast<std::size_t>(s * e_ + j)];
        const std::int64_t per = message_rows_[static_cast<std::size_t>(s)];
        for (std::int64_t t = 0; t < tiles_of(rows); ++t) {
          const std::int64_t first = t * tile_rows_;
          const std::int64_t tile = std::min(tile_rows_, rows - first);
          for (std::int64_t at = 0; at < tile; at += per) {  // the sender's messages of this tile, in its order
            const std::int64_t n = std::min(per, tile - at);
            MPI_Request req;
            mpi::check(MPI_Irecv(landing_ + landing_at, static_cast<int>(n), row_type_, s, tag(j, first), comm_, &req),
                       "MPI_Irecv");
            requests_.push_back(req);
            in_flight_.push_back({.slot = kReceive,
                                  .landing_at = landing_at,
                                  .y_at = (recv_offset_[static_cast<std::size_t>(s * e_ + j)] + first + at) * row_bytes_,
                                  .bytes = n * row_bytes_,
                                  .expert = j});
            landing_at += n * row_bytes_;
          }
        }
      }
    }
    if (self_ != nullptr) {  // this rank's own rows written so far go to y with the received ones
      std::lock_guard lk(queue_mu_);
      landed_.insert(landed_.end(), self_written_.begin(), self_written_.end());
      self_written_.clear();
      self_flushed_ = true;
    }
    last_progress_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    agreed_.store(true, std::memory_order_release);
  }

  enum class HeadState : std::uint8_t { none, waiting, queued };  // waiting: for its rows (D56)
  MPI_Comm comm_;
  MPI_Comm heads_comm_;  // heads travel apart from rows (no tag of a row message can match them)
  bool carry_;           // this call's headers travel in heads (D56), the same on every rank
  int me_, W_, e_;
  MPI_Datatype row_type_;
  MpiCountCheck& check_;
  std::chrono::milliseconds timeout_;
  std::atomic<bool>* broken_;     // the communicator's: set by pool workers and the rank's thread alike
  Quarantine& quarantine_;        // takes the requests of a call that did not finish
  std::byte* landing_ = nullptr;  // the communicator's: receives land here, then are copied into y
  std::byte* whole_ = nullptr;    // the communicator's (Staging::whole): rows for peers that get one message
  const MessagePolicy& messages_;
  std::vector<std::int64_t> head_at_;    // [d]: d's head in whole_ (bytes), just before d's rows
  std::vector<HeadState> head_state_;    // [d] (queue_mu_)
  std::atomic<int> heads_waiting_{0};    // heads in state waiting
  std::int64_t prefix_bytes_ = 0;        // a head's bytes before its rows
  std::byte* heads_ = nullptr;           // the communicator's: room for every peer's head
  std::int64_t head_room_ = 0;           // bytes of room per peer
  std::vector<std::int64_t> head_rows_;  // [s]: rows s's head carried
  std::byte* self_ = nullptr;            // the communicator's: this rank's own rows until agreed
  std::int64_t self_bytes_ = 0;
  std::vector<std::int64_t> self_block_;                     // [j]: expert j's first row in self_
  std::vector<Landed> self_written_;                         // own rows written before the agreement (queue_mu_)
  bool self_flushed_ = false;                                // the agreement took self_written_ (queue_mu_)
  std::vector<std::int64_t> whole_at_;                       // [d]: d's message in whole_ (bytes), -1: tile by tile
  std::vector<std::int64_t> whole_rows_;                     // [d]: rows of d's message
  std::vector<std::int64_t> whole_block_;                    // [d*e + j]: block (d, j)'s first row in d's message
  std::unique_ptr<std::atomic<std::int64_t>[]> whole_left_;  // [d]: rows of d's message not yet written
  std::int64_t tag_stride_ = 1;
  std::int64_t row_bytes_ = 0;
  std::int64_t tile_rows_ = 1;  // the engine's rows per tile (CallInfo::tiling)
  std::byte* y_ = nullptr;
  std::byte* staging_ = nullptr;           // the communicator's send ring
  std::vector<std::int64_t> recv_counts_;  // [s*e + j]
  std::vector<std::int64_t> recv_offset_;  // [s*e + j] rows into y
  std::vector<MPI_Request> requests_;      // receives and sends in flight
  std::vector<InFlight> in_flight_;        // what each request is for
  std::vector<int> indices_;
  std::vector<MPI_Status> statuses_;
  std::vector<Landed> landed_;  // completed receives not yet copied into y (the driving thread's)
  std::mutex queue_mu_;         // guards queue_, free_slots_, aborted_, stuck_before_agreement_
  std::vector<PendingSend> queue_;
  std::vector<int> free_slots_;
  std::vector<int> slot_messages_;            // [slot]: its tile's messages queued or in flight (queue_mu_)
  std::vector<std::int64_t> slot_unwritten_;  // [slot]: its tile's rows not yet reported done (queue_mu_)
  std::vector<std::int64_t> message_rows_;    // [peer]: rows per message (a tile's rows when not split)
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

  std::chrono::steady_clock::time_point last_progress() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_progress_ns_.load(std::memory_order_relaxed)));
  }
};

class MpiCommunicator final : public Communicator, private Quarantine {
 public:
  MpiCommunicator(MPI_Comm comm, MPI_Comm heads_comm, std::chrono::milliseconds timeout, std::string name, MessagePolicy messages)
      : comm_(comm), heads_comm_(heads_comm), timeout_(timeout), name_(std::move(name)), messages_(std::move(messages)) {
    auto lk = mpi::lock();
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    int* ub = nullptr;
    int flag = 0;
    MPI_Comm_get_attr(comm_, MPI_TAG_UB, &ub, &flag);
    check_ = std::make_unique<MpiCountCheck>(comm_, rank_, size_, flag && ub ? *ub : 32767);
  }
  // A broken group may have requests left in MPI (a failed call's, or the
  // count check's): their buffers are freed only once they completed, and
  // never after MPI_Finalize (then nobody can tell) — a leak, not a write
  // into freed memory.
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && !broken_.load()) {
      auto lk = mpi::lock();
      for (auto& [bytes, type] : row_types_) MPI_Type_free(&type);
      MPI_Comm_free(&heads_comm_);
      MPI_Comm_free(&comm_);
      return;
    }
    bool settled = false;
    if (!finalized) {
      auto lk = mpi::lock();
      int done = 0;
      settled =
          check_->settled() &&
          MPI_Testall(static_cast<int>(quarantined_.size()), quarantined_.data(), &done, MPI_STATUSES_IGNORE) == MPI_SUCCESS &&
          done;
    }
    if (!settled) {
      staging_.abandon();
      (void)check_.release();
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  std::size_t workspace_bytes(const Plan& plan, const Tiling& tiling) const override {
    const std::int64_t remote_rows = plan.rows_in() - plan.rows_to(plan.rank());
    const std::int64_t row_bytes = plan.exchange_width() * static_cast<std::int64_t>(element_size(plan.desc().dtype));
    return static_cast<std::size_t>(staging_slots(remote_rows, row_bytes, tiling) * tiling.tile_rows * row_bytes);
  }

  std::size_t min_workspace_bytes(const Plan& plan, const Tiling& tiling) const override {
    const bool remote = plan.rows_in() > plan.rows_to(plan.rank());
    return remote ? static_cast<std::size_t>(tiling.tile_rows * plan.exchange_width()) * element_size(plan.desc().dtype) : 0;
  }

  // One rank per process: its thread computes too instead of waiting for the
  // pool (docs/decisions.md D4), so nothing wakes it just to poll.
  bool caller_computes() const override { return true; }

  // Starts the count check and hands out the call's Exchange at once: the
  // engine computes while the check's messages travel, and the Exchange
  // sends nothing, and writes nothing to this rank's outputs, before it
  // passed (D10). Under FUNNELED only this thread may call MPI, so the check
  // completes here first.
  std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte> workspace) override {
    if (broken_.load())
      fail(Errc::group_broken, "group",
           "expected a working MPI group, got one broken by an earlier call that failed or timed out (MPI may still hold {} of "
           "that call's transfers, into memory the group keeps); recreate the group",
           quarantined_.size());
    std::int64_t remote_rows = 0, incoming_rows = 0;
    for (int d = 0; d < size_; ++d)
      if (d != rank_)
        for (int j = 0; j < mine.local_experts; ++j) {
          remote_rows += mine.send_counts[static_cast<std::size_t>(d * mine.local_experts + j)];
          incoming_rows += mine.recv_counts[static_cast<std::size_t>(d * mine.local_experts + j)];
        }
    // Any workspace of at least one slot works; more slots keep more sends in flight.
    const std::int64_t row_bytes = mine.row_width * static_cast<std::int64_t>(element_size(mine.dtype));
    const std::int64_t tile_rows = mine.tiling.tile_rows;
    if (tile_rows < 1) fail(Errc::internal, "tiling", "expected the engine's rows per tile (>= 1), got {}", tile_rows);
    const std::int64_t slot_bytes = tile_rows * row_bytes;
    const std::int64_t slots = std::min<std::int64_t>(static_cast<std::int64_t>(workspace.size()) / slot_bytes,
                                                      (remote_rows + tile_rows - 1) / tile_rows);
    if (remote_rows > 0 && slots < 1)
      fail(Errc::invalid_argument, "workspaceSize", "expected at least {} bytes of workspace (one tile), got {}", slot_bytes,
           workspace.size());
    // The workspace's size sets the ring's slots (what GetWorkspaceSize asks
    // for); MPI never gets its bytes, nor y's (D47).
    std::byte* ring = staging_.ring(static_cast<std::size_t>(slots * slot_bytes));
    std::byte* landing = staging_.landing(static_cast<std::size_t>(incoming_rows * row_bytes));
    bool agreed = false;
    MPI_Datatype row = MPI_DATATYPE_NULL;
    // A small call after a small call (the last call's most bytes for one
    // peer, the same on every rank) sends each peer one message: its header,
    // counts and rows together (D56).
    const bool carry = messages_.carry && size_ > 1 && size_ <= MessagePolicy::kMaxCarryRanks && check_->last_peer_bytes() >= 0 &&
                       check_->last_peer_bytes() <= messages_.bytes;
    {
      auto lk = mpi::lock();
      row = row_type(row_bytes);
      if (carry)
        check_->start_carried(mine);
      else
        check_->start(mine);
    }
    if (!mpi::thread_level_at_least_serialized()) {
      const auto deadline = deadline_after(timeout_);
      mpi::Backoff backoff;
      for (;;) {
        {
          auto lk = mpi::lock();
          if (check_->advance()) break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
          broken_.store(true);
          fail(Errc::timeout, "group", "timed out after {} ms {}; the group is broken, recreate it", timeout_.count(),
               check_->waiting_for());
        }
        backoff.pause();
      }
      agreed = true;
    }
    return std::make_unique<MpiExchange>(comm_, rank_, size_, mine, row, ring, slots, landing, staging_, *check_, agreed,
                                         timeout_, &broken_, static_cast<Quarantine&>(*this), messages_, carry, heads_comm_);
  }

 private:
  // A call that did not finish hands over what MPI still holds; the group is
  // broken (meet refuses), so the staging those requests use is never reused.
  void quarantine(std::vector<MPI_Request> requests) noexcept override {
    broken_.store(true);
    quarantined_.insert(quarantined_.end(), requests.begin(), requests.end());
  }

  // One committed datatype per row width, kept for the group's life (a call
  // would otherwise create and free one).
  MPI_Datatype row_type(std::int64_t row_bytes) {
    for (const auto& [bytes, type] : row_types_)
      if (bytes == row_bytes) return type;
    MPI_Datatype type;
    mpi::check(MPI_Type_contiguous(static_cast<int>(row_bytes), MPI_BYTE, &type), "MPI_Type_contiguous");
    mpi::check(MPI_Type_commit(&type), "MPI_Type_commit");
    row_types_.emplace_back(row_bytes, type);
    return type;
  }

  MPI_Comm comm_;
  MPI_Comm heads_comm_;  // a dup of comm_: small calls' heads (D56)
  std::chrono::milliseconds timeout_;
  std::string name_;
  int rank_ = 0, size_ = 1;
  std::atomic<bool> broken_{false};       // written by pool workers during a call (through MpiExchange)
  std::unique_ptr<MpiCountCheck> check_;  // owned here: a gather that timed out may still write into it
  std::vector<std::pair<std::int64_t, MPI_Datatype>> row_types_;
  MessagePolicy messages_;                // how tiles are cut into MPI messages, per peer
  Staging staging_;                       // the send ring and the receives' landing area (D47)
  std::vector<MPI_Request> quarantined_;  // a failed call's requests still in MPI (they use staging_)
};

// The group's message policy (collective: every rank of `comm` calls it).
// GMMAV_MPI_MESSAGE_BYTES must be the same on every rank (a receiver posts
// the messages its peer sends); unset, tiles are split only for peers on
// another machine or network namespace (on one, shared memory or loopback has
// no wire to keep busy and copies a whole tile at once). Who is where comes
// from one all-gather of every rank's keys (mpi_machines.hpp), so two ranks
// never disagree on how the messages between them are cut.
// Waits at most `timeout` for the group's ranks (then Errc::timeout).
MessagePolicy message_policy(MPI_Comm comm, int rank, int size, std::chrono::milliseconds timeout) {
  const std::optional<std::int64_t> given = config::mpi_message_bytes();
  MessagePolicy p;
  p.bytes = given.value_or(MessagePolicy::kOffNodeBytes);
  // [0..2]: this rank's values; [3..5]: the group's minimum (MPI may still
  // write them after a timeout: leaked then).
  // Third: whether this rank's pool workers may call MPI (heads may then wait for their rows).
  auto values = std::make_unique<std::int64_t[]>(6);
  values[0] = given ? *given : -1;
  values[1] = given ? -*given : 1;
  values[2] = mpi::thread_level_at_least_serialized() ? 1 : 0;
  MPI_Request req = MPI_REQUEST_NULL;
  {
    auto lk = mpi::lock();
    mpi::check(MPI_Iallreduce(values.get(), values.get() + 3, 3, MPI_INT64_T, MPI_MIN, comm, &req), "MPI_Iallreduce");
  }
  mpi::wait_or_leak(&req, values, timeout, "while the group's ranks agreed on their message sizes (a rank did not arrive)");
  const std::int64_t* agreed = values.get() + 3;
  if (agreed[0] != -agreed[1])
    fail(Errc::invalid_argument, "GMMAV_MPI_MESSAGE_BYTES",
         "expected the same value on every rank of the group, got values from {} to {} (unset counts as -1); this rank has {}",
         agreed[0], -agreed[1], values[0]);
  p.carry = agreed[2] == 1 && p.bytes > 0;
  if (given) return p;  // every peer
  const MachineMap map = map_machines(comm, timeout);
  p.split_peer.assign(static_cast<std::size_t>(size), 0);
  for (int r = 0; r < size; ++r) p.split_peer[static_cast<std::size_t>(r)] = map.same_network(rank, r) ? 0 : 1;
  return p;
}

}  // namespace

std::shared_ptr<Communicator> create_mpi(MPI_Comm user_comm, std::chrono::milliseconds timeout, const std::string& name) {
  (void)progress_enabled();
  mpi::ensure_initialized();
  // Every collective of the group's creation is non-blocking and waited for
  // at most `timeout`: a rank that never arrives is a timeout error, not a
  // hang (the handles MPI may still write are leaked then).
  const auto dup_of = [&](MPI_Comm from, const char* what) {
    auto out = std::make_unique<MPI_Comm>(MPI_COMM_NULL);
    MPI_Request req = MPI_REQUEST_NULL;
    {
      auto lk = mpi::lock();
      mpi::check(MPI_Comm_idup(from, out.get(), &req), "MPI_Comm_idup");
    }
    mpi::wait_or_leak(&req, out, timeout, what);
    auto lk = mpi::lock();
    MPI_Comm_set_errhandler(*out, MPI_ERRORS_RETURN);
    return *out;
  };
  MPI_Comm dup = dup_of(user_comm, "while the group's ranks duplicated the communicator (a rank did not arrive)");
  int rank = 0, size = 1;
  {
    auto lk = mpi::lock();
    MPI_Comm_rank(dup, &rank);
    MPI_Comm_size(dup, &size);
  }
  MessagePolicy messages;
  MPI_Comm heads = MPI_COMM_NULL;
  try {
    messages = message_policy(dup, rank, size, timeout);
    heads = dup_of(dup, "while the group's ranks made its second communicator (a rank did not arrive)");
  } catch (...) {
    bool timed_out = false;  // then a collective may still be pending on dup: keep it
    try {
      throw;
    } catch (const Error& e) {
      timed_out = e.code() == Errc::timeout;
    } catch (...) {
    }
    if (!timed_out) {
      auto lk = mpi::lock();
      MPI_Comm_free(&dup);
    }
    throw;
  }
  return std::make_shared<MpiCommunicator>(dup, heads, timeout, name.empty() ? std::string("gmmav-mpi") : name,
                                           std::move(messages));
}

}  // namespace gmmav::comm
