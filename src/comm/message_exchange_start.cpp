// A call's start on a transport (meet's part every transport shares): the
// send ring's slots from the workspace, the count check (carried in heads
// after a small call, D56), and the call's MessageExchange.
#include <algorithm>

#include "comm/backoff.hpp"
#include "comm/message_exchange.hpp"
#include "common/deadline.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

// Workers may not call the transport (MPI FUNNELED, Python): the check completes on this thread first.
void wait_for_check(const ExchangeGroup& g) {
  const auto deadline = deadline_after(g.timeout);
  Backoff backoff;
  for (;;) {
    {
      auto lk = g.transport->lock();
      if (g.transport->check().advance()) return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      g.broken->store(true);
      fail(Errc::timeout, "group", "timed out after {} ms {}; the group is broken, recreate it", g.timeout.count(),
           g.transport->check().waiting_for());
    }
    backoff.pause();
  }
}

}  // namespace

std::size_t exchange_workspace_bytes(const Plan& plan, const Tiling& tiling) {
  const std::int64_t remote_rows = plan.rows_in() - plan.rows_to(plan.rank());
  const std::int64_t row_bytes = plan.exchange_width() * static_cast<std::int64_t>(element_size(plan.desc().dtype));
  return static_cast<std::size_t>(staging_slots(remote_rows, row_bytes, tiling) * tiling.tile_rows * row_bytes);
}

std::size_t exchange_min_workspace_bytes(const Plan& plan, const Tiling& tiling) {
  const bool remote = plan.rows_in() > plan.rows_to(plan.rank());
  return remote ? static_cast<std::size_t>(tiling.tile_rows * plan.exchange_width()) * element_size(plan.desc().dtype) : 0;
}

// Starts the count check and hands out the call's Exchange at once: the
// engine computes while the check's messages travel, and the Exchange sends
// nothing, and writes nothing to this rank's outputs, before it passed (D10).
std::unique_ptr<Exchange> start_exchange(const CallInfo& mine, std::span<std::byte> workspace, const ExchangeGroup& g) {
  std::int64_t remote_rows = 0;
  for (int d = 0; d < g.size; ++d)
    if (d != g.rank)
      for (int j = 0; j < mine.local_experts; ++j)
        remote_rows += mine.send_counts[static_cast<std::size_t>(d * mine.local_experts + j)];
  // Any workspace of at least one slot works; more slots keep more sends in flight.
  const std::int64_t row_bytes = mine.row_width * static_cast<std::int64_t>(element_size(mine.dtype));
  const std::int64_t tile_rows = mine.tiling.tile_rows;
  if (tile_rows < 1) fail(Errc::internal, "tiling", "expected the engine's rows per tile (>= 1), got {}", tile_rows);
  const std::int64_t slot_bytes = tile_rows * row_bytes;
  const std::int64_t slots =
      std::min<std::int64_t>(static_cast<std::int64_t>(workspace.size()) / slot_bytes, (remote_rows + tile_rows - 1) / tile_rows);
  if (remote_rows > 0 && slots < 1)
    fail(Errc::invalid_argument, "workspaceSize", "expected at least {} bytes of workspace (one tile), got {}", slot_bytes,
         workspace.size());
  // The workspace's size sets the ring's slots (what GetWorkspaceSize asks
  // for); the transport never gets its bytes, nor y's (D47).
  std::byte* ring = g.staging->ring(static_cast<std::size_t>(slots * slot_bytes));
  CountCheck& check = g.transport->check();
  // A small call after a small call (the last call's most bytes for one
  // peer, the same on every rank) sends each peer one message: its header,
  // counts and rows together (D56).
  const bool carry = g.messages->carry && g.size > 1 && g.size <= MessagePolicy::kMaxCarryRanks && check.last_peer_bytes() >= 0 &&
                     check.last_peer_bytes() <= g.messages->bytes;
  std::unique_ptr<Transfers> transfers;
  {
    auto lk = g.transport->lock();
    transfers = g.transport->transfers(row_bytes);
    if (carry)
      check.start_carried(mine);
    else
      check.start(mine);
  }
  const bool agreed = !g.transport->workers_may_drive();
  if (agreed) wait_for_check(g);
  return std::make_unique<MessageExchange>(mine, ExchangeSetup{.rank = g.rank,
                                                               .size = g.size,
                                                               .transport = g.transport,
                                                               .transfers = std::move(transfers),
                                                               .timeout = g.timeout,
                                                               .broken = g.broken,
                                                               .messages = g.messages,
                                                               .carry = carry,
                                                               .agreed = agreed,
                                                               .staging = g.staging,
                                                               .ring = ring,
                                                               .ring_slots = slots});
}

}  // namespace gmmav::comm
