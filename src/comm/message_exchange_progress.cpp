// MessageExchange, driving MPI: one non-blocking pass advances the count check,
// starts the queued sends, tests every request in flight and hands what
// completed on (a freed ring slot, rows for y, a peer's head for the check).
#include <algorithm>
#include <cstring>

#include "comm/message_exchange.hpp"
#include "common/deadline.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {

// One non-blocking pass: advance the count check, start queued sends, test
// every request, free the slots of completed sends. One thread at a time;
// a worker that finds another one driving goes back to its GEMMs
// (wait_turn=false).
void MessageExchange::drive(bool wait_turn) {
  std::unique_lock one(poll_mu_, std::defer_lock);
  if (wait_turn) {
    one.lock();
  } else if (!one.try_lock()) {
    return;
  }
  for (;;) {
    const bool agreed = drive_locked();
    copy_landed();  // outside MPI's lock: copying a tile into y takes a while
    if (!agreed) break;
    std::lock_guard lk(queue_mu_);
    if (queue_.empty()) break;
  }
}

// Completed receives (and own rows staged before the agreement) into y.
void MessageExchange::copy_landed() {
  for (const Landed& l : landed_) {
    std::memcpy(y_ + l.y_at, l.from, static_cast<std::size_t>(l.bytes));
    arrived(l.expert, l.bytes / row_bytes_);
  }
  landed_.clear();
}

// False while the count check is still out (nothing but heads can be sent yet).
bool MessageExchange::drive_locked() {
  auto lk = transport_.lock();
  if (!agreed_.load(std::memory_order_relaxed) && !advance_check()) return false;
  start_sends(/*agreed=*/true);
  if (transfers_->empty()) return true;
  if (funneled_stuck()) return true;
  test_requests();
  return true;
}

// Until the check passed (caller holds the transport's lock()): heads out and in, one
// step of the check; true once it passed (receives are then posted).
bool MessageExchange::advance_check() {
  if (refused_.load(std::memory_order_relaxed)) return false;
  if (carry_) {  // the check waits for every peer's head
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
  return true;
}

// FUNNELED: workers blocked on a staging slot while nothing moves for the
// timeout means a peer is gone. Wake them with an error (never throw from
// here: the pool's job is still running on this thread's stack).
bool MessageExchange::funneled_stuck() {
  if (workers_drive_ || !exceeds(std::chrono::steady_clock::now() - last_progress(), timeout_)) return false;
  {
    std::lock_guard q(queue_mu_);
    if (waiting_for_slot_ == 0) return false;
    aborted_ = true;
  }
  broken_->store(true, std::memory_order_relaxed);
  slot_freed_.notify_all();
  return true;
}

// Starts the queued sends (caller holds the transport's lock()); before the check
// passed only heads (D56), which land in the peer's room for them, not in y.
void MessageExchange::start_sends(bool agreed) {
  std::vector<PendingSend> sends;
  {
    std::lock_guard q(queue_mu_);
    if (agreed) {
      sends.swap(queue_);
    } else {
      const auto heads = std::stable_partition(queue_.begin(), queue_.end(),
                                               [](const PendingSend& p) { return p.purpose == Purpose::send_head; });
      sends.assign(queue_.begin(), heads);
      queue_.erase(queue_.begin(), heads);
    }
  }
  for (const PendingSend& s : sends) {
    switch (s.purpose) {
      case Purpose::send_head:
        transfers_->send({.channel = Channel::heads, .peer = s.dest, .tag = 0, .count = s.bytes, .unit = Unit::byte}, s.data,
                         {.purpose = s.purpose});
        break;
      case Purpose::send_whole:  // tag 0: no other message goes to the peer in this call
        transfers_->send({.channel = Channel::rows, .peer = s.dest, .tag = 0, .count = s.rows, .unit = Unit::row}, s.data,
                         {.purpose = s.purpose});
        break;
      default: {  // a tile's messages, in order: the receiver matches them so
        const int tag = static_cast<int>(s.expert * tag_stride_ + s.tile);
        transfers_->send({.channel = Channel::rows, .peer = s.dest, .tag = tag, .count = s.rows, .unit = Unit::row}, s.data,
                         {.purpose = s.purpose, .slot = s.slot});
      }
    }
  }
}

// One test of the call's transfers (caller holds the transport's lock()):
// completed sends free their slots, completed receives are queued for the
// copy into y, a peer's head goes to the count check.
void MessageExchange::test_requests() {
  const std::span<const Completed> done = transfers_->test();
  if (done.empty()) return;
  check_received(done);
  made_progress();
  bool freed = false;
  {
    std::lock_guard q(queue_mu_);
    for (const Completed& c : done) {
      const InFlight& f = c.what;
      switch (f.purpose) {
        case Purpose::send_tile:
          freed = ring_.sent(f.slot) || freed;  // the tile's last message frees its slot
          break;
        case Purpose::receive_head:
          head_in(f.peer, heads_ + f.landing_at);
          break;
        case Purpose::receive_whole:
          land_all_from(f.peer, landing_ + f.landing_at);
          break;
        case Purpose::receive_tile:
          landed_.push_back({landing_ + f.landing_at, f.y_at, f.bytes, f.expert});
          break;
        case Purpose::send_whole:
        case Purpose::send_head:
          break;
      }
    }
  }
  if (freed) slot_freed_.notify_all();
}

// A receive must get exactly the bytes it was posted for: anything else
// means the two ranks cut their messages differently, and rows would land
// in the wrong place. Never silent (issue 29). A transfer that failed (a
// peer died; MPI's truncation) breaks the group. Completed requests already
// left the table, so the destructor never sees them.
void MessageExchange::check_received(std::span<const Completed> done) const {
  for (const Completed& c : done) {
    const InFlight& f = c.what;
    const bool rows = f.purpose == Purpose::receive_tile || f.purpose == Purpose::receive_whole;
    if (!c.error.empty() && is_receive(f.purpose))
      fail(Errc::internal, "group",
           "rank {}: a receive from rank {} (tag {}) failed: {} (a peer died, or the ranks cut the call's rows into "
           "different messages); the group is broken, recreate it",
           me_, f.peer, c.tag, c.error);
    if (!c.error.empty())
      fail(Errc::internal, "group", "rank {}: a send failed: {}; the group is broken, recreate it", me_, c.error);
    if (rows && c.bytes != f.bytes)
      fail(Errc::internal, "group",
           "rank {} expected a message of {} bytes from rank {} (tag {}), got {}: the ranks cut the call's rows into "
           "different messages; the group is broken, recreate it",
           me_, f.bytes, c.source, c.tag, c.bytes);
  }
}

// All of source s's rows of the call, one block per expert in order from
// `from` (one message): queued for the copy into y.
void MessageExchange::land_all_from(int s, const std::byte* from) {
  for (int j = 0; j < e_; ++j) {
    const std::int64_t bytes = receives_.block_rows(s, j) * row_bytes_;
    if (bytes > 0) landed_.push_back({from, recv_offset_[static_cast<std::size_t>(s * e_ + j)] * row_bytes_, bytes, j});
    from += bytes;
  }
}

// The check passed (caller holds the transport's lock()): every incoming message gets its
// receive, into the landing area; queued sends may start.
void MessageExchange::on_agreed() {
  tag_stride_ = check_.tag_stride();
  for (int s = 0; s < W_; ++s) {
    if (s == me_) continue;
    const std::int64_t carried = carry_ ? head_rows_[static_cast<std::size_t>(s)] : 0;
    if (carried == 0) {
      post_receives(s);
      continue;
    }
    // Its head carried them, one block per expert in order after its prefix
    // (the check passed: s's e is this rank's, so is its head's prefix).
    if (!receives_.head_fits(s, carried))
      fail(Errc::internal, "group", "rank {}: rank {}'s head carried {} rows, expected {}", me_, s, carried, receives_.rows(s));
    land_all_from(s, heads_ + s * receives_.head_room() + receives_.head_bytes(0));
  }
  if (self_ != nullptr) {  // this rank's own rows written so far go to y with the received ones
    std::lock_guard lk(queue_mu_);
    landed_.insert(landed_.end(), self_written_.begin(), self_written_.end());
    self_written_.clear();
    self_flushed_ = true;
  }
  made_progress();
  agreed_.store(true, std::memory_order_release);
}

// The receives of every message from s, as its sends were cut (the sender
// decided the same from the same counts).
void MessageExchange::post_receives(int s) {
  for (const RowMessage& m : receives_.messages(s)) {
    const Message message{.channel = Channel::rows, .peer = s, .tag = m.tag(tag_stride_), .count = m.rows, .unit = Unit::row};
    if (m.expert < 0) {
      transfers_->receive(message, landing_ + m.at,
                          {.purpose = Purpose::receive_whole, .peer = s, .landing_at = m.at, .bytes = m.rows * row_bytes_});
      continue;
    }
    transfers_->receive(message, landing_ + m.at,
                        {.purpose = Purpose::receive_tile,
                         .peer = s,
                         .landing_at = m.at,
                         .y_at = (recv_offset_[static_cast<std::size_t>(s * e_ + m.expert)] + m.first) * row_bytes_,
                         .bytes = m.rows * row_bytes_,
                         .expert = m.expert});
  }
}

}  // namespace gmmav::comm
