#include "comm/message_plan.hpp"

#include <algorithm>

namespace gmmav::comm {
namespace {

std::int64_t round_up_64(std::int64_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

std::int64_t MessagePolicy::rows(int peer, std::int64_t row_bytes) const {
  if (bytes == 0) return 0;
  if (!split_peer.empty() && !split_peer[static_cast<std::size_t>(peer)]) return 0;
  return std::max<std::int64_t>(1, bytes / row_bytes);
}

MessagePlan::MessagePlan(const MessagePolicy& policy, const MessageCall& call, std::span<const std::int64_t> counts)
    : call_(call), counts_(counts.begin(), counts.end()) {
  const auto W = static_cast<std::size_t>(call.size);
  block_first_.assign(counts_.size(), 0);
  peers_.assign(W, Peer{});
  for (int p = 0; p < call.size; ++p) {
    Peer& peer = peers_[index(p)];
    for (int j = 0; j < call.experts; ++j) {
      block_first_[block(p, j)] = peer.rows;
      peer.rows += counts_[block(p, j)];
    }
    const std::int64_t m = policy.rows(p, call.row_bytes);
    peer.message_rows = m == 0 || m > call.tile_rows ? call.tile_rows : m;
    if (p == call.rank || peer.rows == 0)
      peer.route = PeerRoute::none;
    else
      peer.route = policy.one_message(peer.rows * call.row_bytes) ? PeerRoute::whole : PeerRoute::tiles;
  }
  if (call.carry) head_room_ = round_up_64(std::max(policy.bytes, call.head_min_room));
}

MessagePlan MessagePlan::sends(const MessagePolicy& policy, const MessageCall& call, std::span<const std::int64_t> send_counts) {
  MessagePlan plan(policy, call, send_counts);
  std::int64_t at = 0;
  bool sends_tiles = false;  // some peer's rows go tile by tile
  for (int d = 0; d < call.size; ++d) {
    if (d == call.rank) continue;
    Peer& peer = plan.peers_[plan.index(d)];
    sends_tiles = sends_tiles || peer.route == PeerRoute::tiles;
    if (call.carry) {
      at = round_up_64(at);
      peer.head_at = at;
      at += call.head_prefix_bytes;
      peer.head_may_carry = peer.route == PeerRoute::whole && plan.head_bytes(peer.rows) <= policy.bytes;
    }
    if (peer.route != PeerRoute::whole) continue;
    peer.area_at = at;
    at += peer.rows * call.row_bytes;
  }
  // A rank with tiles for some peer carries no rows at all: its heads leave
  // at once, so no peer's agreement (and tiles) waits for its GEMMs.
  if (sends_tiles)
    for (Peer& peer : plan.peers_) peer.head_may_carry = false;
  plan.area_bytes_ = at;
  return plan;
}

MessagePlan MessagePlan::receives(const MessagePolicy& policy, const MessageCall& call,
                                  std::span<const std::int64_t> recv_counts) {
  MessagePlan plan(policy, call, recv_counts);
  std::int64_t at = 0;
  for (int s = 0; s < call.size; ++s) {
    if (s == call.rank) continue;
    Peer& peer = plan.peers_[plan.index(s)];
    peer.area_at = at;
    at += peer.rows * call.row_bytes;
  }
  plan.area_bytes_ = at;
  return plan;
}

std::int64_t MessagePlan::early_rows(int peer) const {
  const Peer& p = peers_[index(peer)];
  return p.route == PeerRoute::tiles && p.message_rows < call_.tile_rows ? p.message_rows : 0;
}

bool MessagePlan::head_fits(int peer, std::int64_t rows) const {
  return rows == peers_[index(peer)].rows && head_bytes(rows) <= head_room_;
}

void MessagePlan::tile_messages(int peer, int j, std::int64_t first, std::int64_t rows, std::vector<RowMessage>& out) const {
  const std::int64_t per = peers_[index(peer)].message_rows;
  const std::int64_t tile = first / call_.tile_rows;
  for (std::int64_t at = 0; at < rows; at += per)
    out.push_back({.peer = peer,
                   .expert = j,
                   .tile = tile,
                   .first = first + at,
                   .rows = std::min(per, rows - at),
                   .at = at * call_.row_bytes});
}

std::vector<RowMessage> MessagePlan::messages(int peer) const {
  const Peer& p = peers_[index(peer)];
  std::vector<RowMessage> out;
  if (p.route == PeerRoute::whole) out.push_back({.peer = peer, .rows = p.rows, .at = p.area_at});
  if (p.route != PeerRoute::tiles) return out;
  const std::int64_t base = std::max<std::int64_t>(p.area_at, 0);
  for (int j = 0; j < call_.experts; ++j) {
    const std::int64_t rows = counts_[block(peer, j)];
    const std::size_t from = out.size();
    for (std::int64_t first = 0; first < rows; first += call_.tile_rows)
      tile_messages(peer, j, first, std::min(call_.tile_rows, rows - first), out);
    for (std::size_t m = from; m < out.size(); ++m)
      out[m].at = base + (block_first_[block(peer, j)] + out[m].first) * call_.row_bytes;
  }
  return out;
}

std::int64_t MessagePlan::message_count(int peer) const {
  const Peer& p = peers_[index(peer)];
  if (p.route != PeerRoute::tiles) return p.route == PeerRoute::whole ? 1 : 0;
  const auto parts = [&](std::int64_t rows) { return (rows + p.message_rows - 1) / p.message_rows; };
  std::int64_t n = 0;
  for (int j = 0; j < call_.experts; ++j) {
    const std::int64_t rows = counts_[block(peer, j)];
    n += rows / call_.tile_rows * parts(call_.tile_rows) + parts(rows % call_.tile_rows);
  }
  return n;
}

}  // namespace gmmav::comm
