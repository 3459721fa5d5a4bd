// MessageExchange, heads (D56): a small call's count check travels in each
// peer's one message — this rank's header, its counts for the peer, and its
// rows for the peer when they are written in time.
#include <cstring>

#include "comm/backoff.hpp"
#include "comm/message_exchange.hpp"
#include "common/deadline.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {

// Source `src`'s head arrived (caller holds the transport's lock()): its header and
// counts for this rank go to the check; rows it carries wait for the verdict.
void MessageExchange::head_in(int src, const std::byte* head) {
  std::int64_t fixed[CallHeader::kWords + 1];
  std::memcpy(fixed, head, sizeof fixed);
  const std::int64_t e = fixed[0];
  const bool column = e > 0 && CountCheck::carries_column(e);
  const std::int64_t prefix = static_cast<std::int64_t>(sizeof(std::int64_t)) * (CallHeader::kWords + 1 + (column ? e : 0));
  const std::int64_t rows = fixed[CallHeader::kWords];
  // Its rows are checked against this rank's row width once the shape check passed (on_agreed).
  if (rows < 0 || prefix > receives_.head_room())
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
void MessageExchange::release_heads() {
  if (heads_waiting_.load(std::memory_order_acquire) == 0) return;
  std::lock_guard lk(queue_mu_);
  for (int d = 0; d < W_; ++d)
    if (head_state_[static_cast<std::size_t>(d)] == HeadState::waiting) queue_waiting_head(d, 0);
}

// Head d, waiting for its rows, leaves with `carried` of them (all or none;
// the receiver reads the count). Caller holds queue_mu_.
void MessageExchange::queue_waiting_head(int d, std::int64_t carried) {
  std::byte* head = area_ + sends_.head_at(d);
  std::memcpy(head + CallHeader::kWords * static_cast<std::int64_t>(sizeof(std::int64_t)), &carried, sizeof carried);
  head_state_[static_cast<std::size_t>(d)] = HeadState::queued;
  heads_waiting_.fetch_sub(1, std::memory_order_relaxed);
  queue_.push_back({.purpose = Purpose::send_head, .dest = d, .data = head, .bytes = sends_.head_bytes(carried)});
}

// A refused call (every rank refused it, after every head arrived): waits
// until this rank's heads have left, so the group stays usable. False when
// they did not within the timeout (then the group is broken).
bool MessageExchange::own_heads_sent() noexcept {
  try {
    Backoff backoff;
    const auto deadline = deadline_after(timeout_);
    for (;;) {
      {
        auto lk = transport_.lock();
        for (const InFlight& f : transfers_->purposes())
          if (f.purpose != Purpose::send_head) return false;  // only sent heads may be left
        if (transfers_->test_all()) return true;
      }
      if (std::chrono::steady_clock::now() > deadline) return false;
      backoff.pause();
    }
  } catch (...) {
    return false;
  }
}

}  // namespace gmmav::comm
