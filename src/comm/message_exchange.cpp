// MessageExchange, the engine's side: where tiles go (rows_for), what happens
// once they are written (rows_done), and the waits (wait_agreed, finish).
#include "comm/message_exchange.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "comm/backoff.hpp"
#include "common/config.hpp"
#include "common/deadline.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

constexpr std::int64_t kWord = static_cast<std::int64_t>(sizeof(std::int64_t));

// The call as its message plans see it.
MessageCall message_call(const CallInfo& mine, const ExchangeSetup& s) {
  const bool column = CountCheck::carries_column(mine.local_experts);
  return {.rank = s.rank,
          .size = s.size,
          .experts = mine.local_experts,
          .row_bytes = mine.row_width * static_cast<std::int64_t>(element_size(mine.dtype)),
          .tile_rows = mine.tiling.tile_rows,
          .carry = s.carry,
          .head_prefix_bytes = kWord * (CallHeader::kWords + 1 + (column ? mine.local_experts : 0)),
          .head_min_room = kWord * (CallHeader::kWords + 1 + CountCheck::kMaxCarriedColumn)};
}

}  // namespace

bool mpi_progress_enabled() {
  static const bool on = config::mpi_progress();
  return on;
}

void Staging::abandon() {
  for (Buffer* b : {&ring_, &landing_, &whole_, &heads_, &self_}) (void)b->bytes.release();
}

std::byte* Staging::grow(Buffer& buf, std::size_t need) {
  if (need > buf.size) {
    buf.bytes.reset();
    buf.bytes = std::make_unique_for_overwrite<std::byte[]>(need);
    buf.size = need;
  }
  return buf.bytes.get();
}

std::int64_t staging_slots(std::int64_t remote_rows, std::int64_t row_bytes, const Tiling& tiling) {
  const std::int64_t tile_rows = tiling.tile_rows;
  const std::int64_t remote_tiles = (remote_rows + tile_rows - 1) / tile_rows;
  const std::int64_t quarter = remote_rows * row_bytes / 4 / (tile_rows * row_bytes);
  const std::int64_t minimum = 4 * std::int64_t{tiling.compute_threads};
  return std::min(remote_tiles, std::max(minimum, quarter));
}

MessageExchange::MessageExchange(const CallInfo& mine, ExchangeSetup setup)
    : transport_(*setup.transport),
      carry_(setup.carry),
      me_(setup.rank),
      W_(setup.size),
      e_(mine.local_experts),
      check_(setup.transport->check()),
      timeout_(setup.timeout),
      broken_(setup.broken),
      row_bytes_(mine.row_width * static_cast<std::int64_t>(element_size(mine.dtype))),
      tile_rows_(mine.tiling.tile_rows),
      sends_(MessagePlan::sends(*setup.messages, message_call(mine, setup), mine.send_counts)),
      receives_(MessagePlan::receives(*setup.messages, message_call(mine, setup), mine.recv_counts)),
      y_(static_cast<std::byte*>(mine.y)),
      area_(setup.staging->whole(static_cast<std::size_t>(sends_.area_bytes()))),
      landing_(setup.staging->landing(static_cast<std::size_t>(receives_.area_bytes()))),
      recv_offset_(recv_offsets(mine)),
      transfers_(std::move(setup.transfers)),
      ring_(setup.ring, setup.ring_slots, mine.tiling.tile_rows * row_bytes_) {
  // Peers whose rows go as one message: rows still to be written.
  whole_left_ = std::make_unique<std::atomic<std::int64_t>[]>(static_cast<std::size_t>(W_));
  for (int d = 0; d < W_; ++d)
    if (sends_.route(d) == PeerRoute::whole)
      whole_left_[static_cast<std::size_t>(d)].store(sends_.rows(d), std::memory_order_relaxed);
  head_state_.assign(static_cast<std::size_t>(W_), HeadState::none);
  if (carry_) init_heads(mine, *setup.staging, setup.messages->bytes);
  if (mine.op == Op::dispatch) {  // rows of each expert's group still to arrive (wait_received)
    const std::vector<std::int64_t> rows = group_rows(mine);
    pending_rows_ = std::make_unique<std::atomic<std::int64_t>[]>(rows.size());
    for (std::size_t j = 0; j < rows.size(); ++j) pending_rows_[j].store(rows[j], std::memory_order_relaxed);
  }
  workers_drive_ = transport_.workers_may_drive();
  const auto now = std::chrono::steady_clock::now();
  check_deadline_ = deadline_after(timeout_, now);
  last_progress_ns_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  if (carry_) post_head_receives();
  if (setup.agreed) {
    auto lk = transport_.lock();
    on_agreed();
  }
}

// Carrying (D56): every peer's head — this rank's header, its counts for the
// peer, and its rows when they fit — sits in the send area in front of those
// rows; heads that carry no rows are queued at once.
void MessageExchange::init_heads(const CallInfo& mine, Staging& staging, std::int64_t message_bytes) {
  heads_ = staging.heads(static_cast<std::size_t>(receives_.head_room() * W_));
  // This rank's own rows wait in staging, not for the agreement: a tile
  // for this rank is often in the same GEMM as the peers' tiles whose
  // heads the agreement needs (up to 4 heads' worth; larger ones wait).
  const std::int64_t own = sends_.rows(me_);
  if (own > 0 && own * row_bytes_ <= 4 * message_bytes) {
    self_bytes_ = own * row_bytes_;
    self_ = staging.self(static_cast<std::size_t>(self_bytes_));
  }
  head_rows_.assign(static_cast<std::size_t>(W_), 0);
  const bool column = CountCheck::carries_column(e_);
  for (int d = 0; d < W_; ++d) {
    if (d == me_) continue;
    std::vector<std::int64_t> prefix(check_.header(), check_.header() + CallHeader::kWords);
    prefix.push_back(0);  // rows carried: set when they are
    if (column)
      for (int j = 0; j < e_; ++j) prefix.push_back(mine.send_counts[static_cast<std::size_t>(d * e_ + j)]);
    std::byte* head = area_ + sends_.head_at(d);
    std::memcpy(head, prefix.data(), prefix.size() * sizeof(std::int64_t));
    if (sends_.head_may_carry(d)) {
      head_state_[static_cast<std::size_t>(d)] = HeadState::waiting;
      heads_waiting_.fetch_add(1, std::memory_order_relaxed);
    } else {  // no rows to carry: the head leaves at once
      head_state_[static_cast<std::size_t>(d)] = HeadState::queued;
      queue_.push_back({.purpose = Purpose::send_head, .dest = d, .data = head, .bytes = sends_.head_bytes(0)});
    }
  }
}

// Every peer's head, into the communicator's room for it.
void MessageExchange::post_head_receives() {
  auto lk = transport_.lock();
  const std::int64_t room = receives_.head_room();
  for (int src = 0; src < W_; ++src) {
    if (src == me_) continue;
    transfers_->receive({.channel = Channel::heads, .peer = src, .tag = 0, .count = room, .unit = Unit::byte},
                        heads_ + src * room, {.purpose = Purpose::receive_head, .peer = src, .landing_at = src * room});
  }
}

// A call that did not finish (it threw, or a worker failed) may leave
// transfers in the transport: it cancels what it can and keeps the rest,
// with the staging they use (the group is broken). Runs after the call's
// error was thrown, so a receive completing here is not copied into y.
MessageExchange::~MessageExchange() {
  if (transfers_->empty()) return;
  if (refused_.load(std::memory_order_acquire) && own_heads_sent()) return;
  broken_->store(true, std::memory_order_relaxed);
  transfers_->abandon();
}

// Called by pool workers: where a tile goes. Rows for this rank go straight
// into y, once the count check passed. Rows for a peer take a slot of the
// ring; when all are in use the worker drives MPI itself until a send
// completes (or, under FUNNELED, waits for the orchestrating thread's
// polling to free one).
void* MessageExchange::rows_for(int dest, int j, std::int64_t first, std::int64_t rows) {
  if (dest == me_) {
    if (self_ != nullptr && !agreed_.load(std::memory_order_acquire))  // copied into y once agreed (D56)
      return self_ + (sends_.block_first(me_, j) + first) * row_bytes_;
    wait_agreed();
    return y_ + (recv_offset_[static_cast<std::size_t>(me_ * e_ + j)] + first) * row_bytes_;
  }
  if (refused_.load(std::memory_order_acquire)) std::rethrow_exception(refusal_);
  if (sends_.route(dest) == PeerRoute::whole)
    return area_ + sends_.area_at(dest) + (sends_.block_first(dest, j) + first) * row_bytes_;
  std::unique_lock lk(queue_mu_);
  return wait_for_slot(lk, rows);
}

// A slot of the ring for a tile of `rows` rows (caller holds queue_mu_).
std::byte* MessageExchange::wait_for_slot(std::unique_lock<std::mutex>& lk, std::int64_t rows) {
  ++waiting_for_slot_;
  if (!may_drive()) {
    slot_freed_.wait(lk, [&] { return !ring_.full() || aborted_; });
  } else {
    Backoff backoff;
    while (ring_.full() && !aborted_) {
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
      if (stuck && ring_.full()) {
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
  return ring_.take(rows);
}

// A tile is written: queue its sends and, at this tile boundary, drive MPI.
void MessageExchange::rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) {
  if (dest != me_ && sends_.route(dest) == PeerRoute::whole) {
    whole_rows_done(dest, rows);
  } else if (dest != me_) {
    tile_rows_done(dest, j, first, rows, where);
  } else if (self_ != nullptr && where >= self_ && where < self_ + self_bytes_) {
    own_rows_done(j, first, rows, where);
  } else {
    arrived(j, rows);
  }
  if (may_drive() && mpi_progress_enabled()) drive(/*wait_turn=*/false);
}

// Rows of a peer that gets one message: its last ones let the message go.
void MessageExchange::whole_rows_done(int dest, std::int64_t rows) {
  const auto d = static_cast<std::size_t>(dest);
  if (whole_left_[d].fetch_sub(rows, std::memory_order_acq_rel) != rows) return;
  std::lock_guard lk(queue_mu_);
  if (head_state_[d] == HeadState::waiting) {  // the header goes with the rows (D56)
    queue_waiting_head(dest, sends_.rows(dest));
  } else {
    queue_.push_back(
        {.purpose = Purpose::send_whole, .dest = dest, .data = area_ + sends_.area_at(dest), .rows = sends_.rows(dest)});
  }
}

// A tile in a ring slot, or its next rows (early_rows): their messages may go.
void MessageExchange::tile_rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) {
  thread_local std::vector<RowMessage> messages;
  messages.clear();
  sends_.tile_messages(dest, j, first, rows, messages);
  const auto* data = static_cast<const std::byte*>(where);
  std::lock_guard lk(queue_mu_);
  const int slot = ring_.slot_of(where);
  ring_.queued(slot, rows, static_cast<std::int64_t>(messages.size()));
  for (const RowMessage& m : messages)
    queue_.push_back({.purpose = Purpose::send_tile,
                      .dest = dest,
                      .data = data + m.at,
                      .rows = m.rows,
                      .expert = m.expert,
                      .tile = m.tile,
                      .slot = slot});
}

// Rows of this rank's own, staged until the agreement (D56).
void MessageExchange::own_rows_done(int j, std::int64_t first, std::int64_t rows, const void* where) {
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
    arrived(j, rows);
  }
}

// The dispatch op: expert j's rows counted down as they reach y.
void MessageExchange::arrived(int j, std::int64_t rows) {
  if (pending_rows_) pending_rows_[static_cast<std::size_t>(j)].fetch_sub(rows, std::memory_order_acq_rel);
}

// A shared-expert tile finished: a tile boundary like any other.
// Only std::mutex::lock in the handler could still throw (a bug: terminating is right).
void MessageExchange::progress() noexcept {  // NOLINT(bugprone-exception-escape)
  try {
    if (!may_drive() || !mpi_progress_enabled()) return;
    drive(/*wait_turn=*/false);
  } catch (...) {  // an MPI failure: finish() reports it
    std::lock_guard lk(queue_mu_);
    if (!worker_error_) worker_error_ = std::current_exception();
  }
}

// Drives MPI until the count check is in (throws its error if it failed,
// a timeout at the check's deadline).
void MessageExchange::wait_agreed() {
  if (agreed_.load(std::memory_order_acquire)) return;
  release_heads();  // this rank waits: its header may not wait for rows (D56)
  Backoff backoff;
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

// The dispatch op: each expert's rows counted down as they reach y (a
// landed tile once copied, a tile of this rank's own once written).
void MessageExchange::wait_received(int j) {
  wait_agreed();
  const auto& left = pending_rows_[static_cast<std::size_t>(j)];
  Backoff backoff;
  while (left.load(std::memory_order_acquire) != 0) {
    poll();
    {
      std::lock_guard lk(queue_mu_);
      if (worker_error_) std::rethrow_exception(worker_error_);
    }
    if (left.load(std::memory_order_acquire) == 0) return;
    if (exceeds(std::chrono::steady_clock::now() - last_progress(), timeout_))
      fail_no_progress(fmt::format("{} rows of its expert {}", left.load(std::memory_order_relaxed), j));
    backoff.pause();
  }
}

void MessageExchange::finish() {
  wait_agreed();
  Backoff backoff;
  for (;;) {
    poll();
    {
      std::lock_guard lk(queue_mu_);
      if (worker_error_) std::rethrow_exception(worker_error_);
      if (transfers_->empty() && queue_.empty()) return;
    }
    if (exceeds(std::chrono::steady_clock::now() - last_progress(), timeout_))
      fail_no_progress(fmt::format("{} transfers to finish", transfers_->size()));
    backoff.pause();
  }
}

void MessageExchange::abort(const std::string&) noexcept {
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

void MessageExchange::fail_check_timeout() const {
  fail(Errc::timeout, "group", "rank {} timed out after {} ms {}; the group is broken, recreate it", me_, timeout_.count(),
       check_.waiting_for());
}

void MessageExchange::fail_no_progress(const std::string& waiting_for) const {
  broken_->store(true, std::memory_order_relaxed);
  fail(Errc::timeout, "group",
       "rank {} timed out after {} ms without progress waiting for {} (a peer died or stopped); the group is broken, "
       "recreate it",
       me_, timeout_.count(), waiting_for);
}

std::chrono::steady_clock::time_point MessageExchange::last_progress() const {
  return std::chrono::steady_clock::time_point(
      std::chrono::steady_clock::duration(last_progress_ns_.load(std::memory_order_relaxed)));
}

void MessageExchange::made_progress() {
  last_progress_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

}  // namespace gmmav::comm
