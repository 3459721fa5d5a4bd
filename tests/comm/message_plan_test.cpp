// comm::MessagePlan, the MPI backend's wire format, without MPI: for random
// groups (node layouts, message policies, counts with empty, single-row and
// hot blocks, heads that carry or not), every rank's sends are matched to every
// receiver's posted receives the way MPI matches them (per communicator and
// tag, in the order sent), and every row of every block must land exactly
// once, in its place, with the byte count the receive was posted for. And the
// plan must cut messages exactly as the MPI exchange did before it existed
// (a transcription of that code below): ranks of either build interoperate.
#include "comm/message_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

using gmmav::comm::MessageCall;
using gmmav::comm::MessagePlan;
using gmmav::comm::MessagePolicy;
using gmmav::comm::PeerRoute;
using gmmav::comm::RowMessage;

// Head geometry as the MPI exchange uses it (CountCheck: CallHeader's 9 words,
// the carried row count, up to 512 counts).
constexpr std::int64_t kPrefixFixed = 8 * (9 + 1);
constexpr std::int64_t kHeadMinRoom = 8 * (9 + 1 + 512);

// A random group and call: every rank's counts, policy and view.
struct Group {
  int W = 1, e = 1;
  std::int64_t row_bytes = 2, tile_rows = 1;
  std::vector<int> network;           // [rank]: its network (machine map's same_network)
  std::optional<std::int64_t> given;  // GMMAV_MPI_MESSAGE_BYTES
  bool carry_policy = false, carry = false;
  std::vector<std::vector<std::int64_t>> send;  // [s][d*e + j]
  std::vector<std::vector<std::int64_t>> recv;  // [d][s*e + j]
  std::int64_t tag_stride = 1;

  std::int64_t count(int s, int d, int j) const { return send[static_cast<std::size_t>(s)][static_cast<std::size_t>(d * e + j)]; }
  MessagePolicy policy(int rank) const {  // as message_policy() builds it
    MessagePolicy p;
    p.bytes = given.value_or(MessagePolicy::kOffNodeBytes);
    p.carry = carry_policy && p.bytes > 0;
    if (given) return p;
    p.split_peer.assign(static_cast<std::size_t>(W), 0);
    for (int r = 0; r < W; ++r)
      p.split_peer[static_cast<std::size_t>(r)] =
          network[static_cast<std::size_t>(rank)] == network[static_cast<std::size_t>(r)] ? 0 : 1;
    return p;
  }
  MessageCall call(int rank) const {
    return {.rank = rank,
            .size = W,
            .experts = e,
            .row_bytes = row_bytes,
            .tile_rows = tile_rows,
            .carry = carry,
            .head_prefix_bytes = kPrefixFixed + (carry ? 8 * e : 0),
            .head_min_room = kHeadMinRoom};
  }
  MessagePlan sends(int s) const { return MessagePlan::sends(policy(s), call(s), send[static_cast<std::size_t>(s)]); }
  MessagePlan receives(int d) const { return MessagePlan::receives(policy(d), call(d), recv[static_cast<std::size_t>(d)]); }
};

std::int64_t pick_count(std::mt19937_64& rng, std::int64_t tile_rows) {
  switch (rng() % 6) {
    case 0:
    case 1:
      return 0;
    case 2:
      return 1;
    case 3:
      return static_cast<std::int64_t>(rng() % 8);
    case 4:
      return tile_rows * static_cast<std::int64_t>(rng() % 4) + static_cast<std::int64_t>(rng() % 3);  // tile edges
    default:
      return static_cast<std::int64_t>(rng() % 300);  // hot
  }
}

Group random_group(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Group g;
  g.W = 1 + static_cast<int>(rng() % 8);
  g.e = 1 + static_cast<int>(rng() % 4);
  const std::int64_t widths[] = {2, 4, 14, 256, 2048, 7168 * 2, 70000};
  g.row_bytes = widths[rng() % 7];
  const std::int64_t tiles[] = {1, 3, 8, 32, 128};
  g.tile_rows = tiles[rng() % 5];
  const int networks = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < g.W; ++r) g.network.push_back(static_cast<int>(rng() % static_cast<std::uint64_t>(networks)));
  switch (rng() % 4) {
    case 0:
      break;  // unset: 63 KiB, split off the network only
    case 1:
      g.given = 0;
      break;
    case 2:
      g.given = 1 + static_cast<std::int64_t>(rng() % 5000);
      break;
    default:
      g.given = 1 + static_cast<std::int64_t>(rng() % 200000);
  }
  g.carry_policy = rng() % 2 == 0;
  const bool small_call = rng() % 2 == 0;
  g.send.assign(static_cast<std::size_t>(g.W), std::vector<std::int64_t>(static_cast<std::size_t>(g.W * g.e)));
  g.recv = g.send;
  for (int s = 0; s < g.W; ++s)
    for (int d = 0; d < g.W; ++d)
      for (int j = 0; j < g.e; ++j) {
        const std::int64_t c = small_call ? static_cast<std::int64_t>(rng() % 3) : pick_count(rng, g.tile_rows);
        g.send[static_cast<std::size_t>(s)][static_cast<std::size_t>(d * g.e + j)] = c;
        g.recv[static_cast<std::size_t>(d)][static_cast<std::size_t>(s * g.e + j)] = c;
        g.tag_stride = std::max(g.tag_stride, (c + g.tile_rows - 1) / g.tile_rows);
      }
  const MessagePolicy p = g.policy(0);
  g.carry = p.carry && g.W > 1 && g.W <= MessagePolicy::kMaxCarryRanks && rng() % 3 != 0;
  return g;
}

// One message on the wire: its channel (heads or rows), tag, bytes, and the
// rows it carries as (expert, row within the block), in order.
struct Wire {
  bool head = false;
  int tag = 0;
  std::int64_t bytes = 0;
  std::vector<std::pair<int, std::int64_t>> rows{};
};

// What rank s sends rank d, as the exchange would: a head (carry), then the
// rows — in the head, as one message, or tile by tile in a random tile order,
// a split tile reported in random parts (Exchange::early_rows).
std::vector<Wire> sent(const Group& g, const MessagePlan& plan, int d, bool carried, std::mt19937_64& rng) {
  std::vector<Wire> out;
  const auto all_rows = [&] {
    std::vector<std::pair<int, std::int64_t>> rows;
    for (int j = 0; j < g.e; ++j)
      for (std::int64_t r = 0; r < plan.block_rows(d, j); ++r) rows.emplace_back(j, r);
    return rows;
  };
  if (plan.carry()) {
    Wire head{.head = true, .tag = 0, .bytes = plan.head_bytes(carried ? plan.rows(d) : 0)};
    if (carried) head.rows = all_rows();
    out.push_back(head);
    if (carried) return out;
  }
  if (plan.route(d) == PeerRoute::whole) {
    out.push_back({.tag = 0, .bytes = plan.rows(d) * g.row_bytes, .rows = all_rows()});
    return out;
  }
  std::vector<std::pair<int, std::int64_t>> tiles;  // (j, first)
  for (int j = 0; j < g.e; ++j)
    for (std::int64_t first = 0; first < plan.block_rows(d, j); first += g.tile_rows) tiles.emplace_back(j, first);
  std::shuffle(tiles.begin(), tiles.end(), rng);
  for (const auto& [j, first] : tiles) {
    const std::int64_t n = std::min(g.tile_rows, plan.block_rows(d, j) - first);
    const std::int64_t early = plan.early_rows(d);
    std::vector<RowMessage> messages;
    for (std::int64_t at = 0; at < n;) {  // parts: multiples of early_rows, the tile's last one whatever is left
      std::int64_t part = n - at;
      if (early > 0 && rng() % 2 == 0) part = std::min(part, early * (1 + static_cast<std::int64_t>(rng() % 3)));
      std::vector<RowMessage> of_part;
      plan.tile_messages(d, j, first + at, part, of_part);
      for (const RowMessage& m : of_part) {
        EXPECT_EQ(m.at % g.row_bytes, 0);
        EXPECT_EQ(m.at / g.row_bytes, m.first - (first + at));
      }
      messages.insert(messages.end(), of_part.begin(), of_part.end());
      at += part;
    }
    for (const RowMessage& m : messages) {
      Wire w{.tag = m.tag(g.tag_stride), .bytes = m.rows * g.row_bytes};
      for (std::int64_t r = 0; r < m.rows; ++r) w.rows.emplace_back(j, m.first + r);
      out.push_back(w);
    }
  }
  return out;
}

// Runs one group: every pair (s, d) through the wire. Returns a failure description or "".
std::string run_group(const Group& g, std::uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::vector<MessagePlan> sends, receives;
  for (int r = 0; r < g.W; ++r) {
    sends.push_back(g.sends(r));
    receives.push_back(g.receives(r));
  }
  for (int d = 0; d < g.W; ++d) {
    const MessagePlan& rp = receives[static_cast<std::size_t>(d)];
    if (rp.area_bytes() < 0) return "negative landing area";
    std::vector<std::pair<std::int64_t, std::int64_t>> landing;  // [at, end) of every posted receive
    for (int s = 0; s < g.W; ++s) {
      if (s == d) continue;
      const MessagePlan& sp = sends[static_cast<std::size_t>(s)];
      const std::string pair = "s=" + std::to_string(s) + " d=" + std::to_string(d) + ": ";
      if (sp.route(d) != rp.route(s)) return pair + "sender and receiver route differently";
      if (sp.message_rows(d) != rp.message_rows(s)) return pair + "message rows differ";
      if (static_cast<std::int64_t>(rp.messages(s).size()) != rp.message_count(s)) return pair + "message_count";
      // The same messages at both ends (the positions aside).
      std::vector<RowMessage> a = sp.messages(d), b = rp.messages(s);
      if (a.size() != b.size()) return pair + "message lists differ in length";
      for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].expert != b[i].expert || a[i].tile != b[i].tile || a[i].first != b[i].first || a[i].rows != b[i].rows)
          return pair + "message " + std::to_string(i) + " differs";
      const bool carried = sp.carry() && sp.head_may_carry(d) && rng() % 4 != 0;  // else released without its rows
      const std::vector<Wire> wire = sent(g, sp, d, carried, rng);
      // The receiver: a head (carry), then, unless it carried the rows, the posted receives.
      std::map<std::pair<bool, int>, std::vector<Wire>> queues;  // MPI: per channel and tag, in order
      for (const Wire& w : wire) queues[{w.head, w.tag}].push_back(w);
      std::map<std::pair<bool, int>, std::size_t> next;
      const auto match = [&](bool head, int tag) -> const Wire* {
        auto& q = queues[{head, tag}];
        std::size_t& i = next[{head, tag}];
        return i < q.size() ? &q[i++] : nullptr;
      };
      std::vector<std::vector<int>> landed(static_cast<std::size_t>(g.e));
      for (int j = 0; j < g.e; ++j) landed[static_cast<std::size_t>(j)].assign(static_cast<std::size_t>(rp.block_rows(s, j)), 0);
      const auto land = [&](const Wire& w, int j, std::int64_t first, std::int64_t rows, std::size_t from) -> bool {
        for (std::int64_t r = 0; r < rows; ++r) {
          if (w.rows[from + static_cast<std::size_t>(r)] != std::make_pair(j, first + r)) return false;
          ++landed[static_cast<std::size_t>(j)][static_cast<std::size_t>(first + r)];
        }
        return true;
      };
      bool head_carried = false;
      if (rp.carry()) {
        const Wire* h = match(true, 0);
        if (h == nullptr) return pair + "no head";
        if (h->bytes > rp.head_room()) return pair + "a head larger than its room";
        const auto rows = static_cast<std::int64_t>(h->rows.size());
        if (rows > 0) {
          if (!rp.head_fits(s, rows)) return pair + "a head the receiver refuses";
          for (int j = 0; j < g.e; ++j)
            if (!land(*h, j, 0, rp.block_rows(s, j), static_cast<std::size_t>(rp.block_first(s, j))))
              return pair + "head rows out of place";
          head_carried = true;
        }
      }
      if (!head_carried)
        for (const RowMessage& m : rp.messages(s)) {
          const Wire* w = match(false, m.tag(g.tag_stride));
          if (w == nullptr) return pair + "a receive no message matches";
          if (w->bytes != m.rows * g.row_bytes) return pair + "a receive of another byte count than its message";
          if (m.at < 0 || m.at + w->bytes > rp.area_bytes()) return pair + "a receive outside the landing area";
          landing.emplace_back(m.at, m.at + w->bytes);
          if (m.expert < 0) {
            for (int j = 0; j < g.e; ++j)
              if (!land(*w, j, 0, rp.block_rows(s, j), static_cast<std::size_t>(rp.block_first(s, j))))
                return pair + "whole message rows out of place";
          } else if (!land(*w, m.expert, m.first, m.rows, 0)) {
            return pair + "tile rows out of place";
          }
        }
      for (const auto& [key, q] : queues)
        if (next[key] != q.size()) return pair + "a message nobody receives";
      for (const auto& block : landed)
        for (int c : block)
          if (c != 1) return pair + "a row landed " + std::to_string(c) + " times";
    }
    std::sort(landing.begin(), landing.end());
    for (std::size_t i = 1; i < landing.size(); ++i)
      if (landing[i].first < landing[i - 1].second) return "receives overlap in the landing area";
  }
  // The send area: heads (64-byte aligned) and whole messages, disjoint.
  for (int s = 0; s < g.W; ++s) {
    const MessagePlan& sp = sends[static_cast<std::size_t>(s)];
    std::vector<std::pair<std::int64_t, std::int64_t>> spans;
    for (int d = 0; d < g.W; ++d) {
      if (d == s) continue;
      if (sp.carry()) {
        if (sp.head_at(d) % 64 != 0) return "a head not 64-byte aligned";
        const std::int64_t bytes = sp.head_may_carry(d) ? sp.head_bytes(sp.rows(d)) : sp.head_bytes(0);
        spans.emplace_back(sp.head_at(d), sp.head_at(d) + bytes);
      } else if (sp.route(d) == PeerRoute::whole) {
        spans.emplace_back(sp.area_at(d), sp.area_at(d) + sp.rows(d) * g.row_bytes);
      }
    }
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 0; i < spans.size(); ++i)
      if (spans[i].second > sp.area_bytes() || (i > 0 && spans[i].first < spans[i - 1].second))
        return "the send area's heads and messages overlap or overflow";
  }
  return "";
}

TEST(MessagePlan, EveryRowLandsOnceInPlaceForRandomGroups) {
  int carried = 0, split = 0, whole = 0;
  for (std::uint64_t seed = 0; seed < 3000; ++seed) {
    const Group g = random_group(seed);
    const std::string failure = run_group(g, seed);
    ASSERT_EQ(failure, "") << "seed " << seed << ": W=" << g.W << " e=" << g.e << " tile_rows=" << g.tile_rows
                           << " row_bytes=" << g.row_bytes << " bytes=" << (g.given ? std::to_string(*g.given) : "unset")
                           << " carry=" << g.carry;
    for (int s = 0; s < g.W; ++s) {
      const MessagePlan p = g.sends(s);
      for (int d = 0; d < g.W; ++d) {
        carried += p.carry() && d != s && p.head_may_carry(d) ? 1 : 0;
        split += p.early_rows(d) > 0 ? 1 : 0;
        whole += p.route(d) == PeerRoute::whole ? 1 : 0;
      }
    }
  }
  // The random groups reach every way rows travel.
  EXPECT_GT(carried, 100);
  EXPECT_GT(split, 100);
  EXPECT_GT(whole, 100);
}

// ---------------------------------------------------------------------------
// The wire format before MessagePlan: a transcription of MessageExchange's code at
// 488e4da (its constructor's layout, start_sends' cutting, on_agreed's
// receives). The plan must give the same messages, bytes and tags.

struct LegacySends {
  std::vector<std::int64_t> whole_at, whole_rows, head_at, message_rows;
  std::vector<char> waiting;  // head state waiting (may carry its rows)
};

// MessagePolicy's two rules as they were (one_message, rows).
bool legacy_one_message(const MessagePolicy& m, std::int64_t rows_bytes) {
  return m.bytes > 0 && rows_bytes > 0 && rows_bytes <= m.bytes;
}
std::int64_t legacy_rows(const MessagePolicy& m, int peer, std::int64_t row_bytes) {
  if (m.bytes == 0) return 0;
  if (!m.split_peer.empty() && !m.split_peer[static_cast<std::size_t>(peer)]) return 0;
  return std::max<std::int64_t>(1, m.bytes / row_bytes);
}

LegacySends legacy_sends(const MessagePolicy& messages, const MessageCall& c, const std::vector<std::int64_t>& send_counts) {
  const int W = c.size, e = c.experts, me = c.rank;
  const std::int64_t row_bytes = c.row_bytes, prefix_bytes = c.head_prefix_bytes;
  LegacySends l;
  l.whole_at.assign(static_cast<std::size_t>(W), -1);
  l.whole_rows.assign(static_cast<std::size_t>(W), 0);
  l.head_at.assign(static_cast<std::size_t>(W), -1);
  l.waiting.assign(static_cast<std::size_t>(W), 0);
  std::int64_t whole_at = 0;
  bool sends_tiles = false;
  for (int d = 0; d < W; ++d) {
    if (d == me) continue;
    std::int64_t rows = 0;
    for (int j = 0; j < e; ++j) rows += send_counts[static_cast<std::size_t>(d * e + j)];
    const bool one = legacy_one_message(messages, rows * row_bytes);
    sends_tiles = sends_tiles || (rows > 0 && !one);
    if (c.carry) {
      whole_at = (whole_at + 63) / 64 * 64;
      l.head_at[static_cast<std::size_t>(d)] = whole_at;
      whole_at += prefix_bytes;
      l.waiting[static_cast<std::size_t>(d)] = one && prefix_bytes + rows * row_bytes <= messages.bytes;
    }
    if (!one) continue;
    l.whole_at[static_cast<std::size_t>(d)] = whole_at;
    l.whole_rows[static_cast<std::size_t>(d)] = rows;
    whole_at += rows * row_bytes;
  }
  if (c.carry && sends_tiles) std::fill(l.waiting.begin(), l.waiting.end(), 0);
  for (int p = 0; p < W; ++p) {
    const std::int64_t m = legacy_rows(messages, p, row_bytes);
    l.message_rows.push_back(m == 0 || m > c.tile_rows ? c.tile_rows : m);
  }
  return l;
}

// on_agreed's receives from s (not carried in a head): (tag, rows, y row within s's expert-j block or -1).
struct LegacyReceive {
  int tag;
  std::int64_t rows;
  int expert;
  std::int64_t first;
};

std::vector<LegacyReceive> legacy_receives(const MessagePolicy& messages, const MessageCall& c,
                                           const std::vector<std::int64_t>& recv_counts, int s, std::int64_t tag_stride) {
  std::vector<LegacyReceive> out;
  const int e = c.experts;
  std::int64_t from_s = 0;
  for (int j = 0; j < e; ++j) from_s += recv_counts[static_cast<std::size_t>(s * e + j)];
  if (legacy_one_message(messages, from_s * c.row_bytes)) {
    out.push_back({0, from_s, -1, 0});
    return out;
  }
  std::int64_t per = legacy_rows(messages, s, c.row_bytes);
  per = per == 0 || per > c.tile_rows ? c.tile_rows : per;
  for (int j = 0; j < e; ++j) {
    const std::int64_t rows = recv_counts[static_cast<std::size_t>(s * e + j)];
    for (std::int64_t t = 0; t < (rows + c.tile_rows - 1) / c.tile_rows; ++t) {
      const std::int64_t first = t * c.tile_rows;
      const std::int64_t tile = std::min(c.tile_rows, rows - first);
      for (std::int64_t at = 0; at < tile; at += per)
        out.push_back({static_cast<int>(j * tag_stride + first / c.tile_rows), std::min(per, tile - at), j, first + at});
    }
  }
  return out;
}

TEST(MessagePlan, CutsMessagesAsTheExchangeDidBefore) {
  for (std::uint64_t seed = 0; seed < 2000; ++seed) {
    const Group g = random_group(seed);
    for (int r = 0; r < g.W; ++r) {
      const MessagePolicy policy = g.policy(r);
      const MessageCall call = g.call(r);
      const MessagePlan sp = g.sends(r), rp = g.receives(r);
      const LegacySends l = legacy_sends(policy, call, g.send[static_cast<std::size_t>(r)]);
      for (int p = 0; p < g.W; ++p) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " rank " + std::to_string(r) + " peer " + std::to_string(p));
        const auto i = static_cast<std::size_t>(p);
        ASSERT_EQ(sp.message_rows(p), l.message_rows[i]);
        if (p == r) continue;
        ASSERT_EQ(sp.area_at(p), l.whole_at[i]);
        if (l.whole_at[i] >= 0) {
          ASSERT_EQ(sp.rows(p), l.whole_rows[i]);
        }
        ASSERT_EQ(sp.head_at(p), l.head_at[i]);
        ASSERT_EQ(sp.head_may_carry(p), l.waiting[i] != 0);
        // The legacy early_rows: tiles of a peer not sent whole, when split.
        const std::int64_t early = l.whole_at[i] >= 0 || l.message_rows[i] >= g.tile_rows ? 0 : l.message_rows[i];
        if (sp.rows(p) > 0) {
          ASSERT_EQ(sp.early_rows(p), early);
        }
        const std::vector<LegacyReceive> want =
            legacy_receives(policy, call, g.recv[static_cast<std::size_t>(r)], p, g.tag_stride);
        const std::vector<RowMessage> got = rp.messages(p);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t m = 0; m < got.size(); ++m) {
          ASSERT_EQ(got[m].tag(g.tag_stride), want[m].tag);
          ASSERT_EQ(got[m].rows, want[m].rows);
          ASSERT_EQ(got[m].expert, want[m].expert);
          if (want[m].expert >= 0) {
            ASSERT_EQ(got[m].first, want[m].first);
          }
        }
      }
    }
  }
}

// A concrete case, written out: 2 ranks on two networks (63 KiB messages of
// 21000-byte rows: 3 rows per message), 8-row tiles.
TEST(MessagePlan, SplitsATileForAPeerOnAnotherNetwork) {
  MessagePolicy policy;
  policy.bytes = MessagePolicy::kOffNodeBytes;
  policy.split_peer = {0, 1};
  const MessageCall call{.rank = 0, .size = 2, .experts = 2, .row_bytes = 21000, .tile_rows = 8};
  const std::vector<std::int64_t> counts = {5, 0, 10, 3};  // to rank 1: expert 0 10 rows, expert 1 3 rows
  const MessagePlan p = MessagePlan::sends(policy, call, counts);
  EXPECT_EQ(p.route(0), PeerRoute::none);
  EXPECT_EQ(p.route(1), PeerRoute::tiles);
  EXPECT_EQ(p.message_rows(1), 3);  // 64512 / 21000
  EXPECT_EQ(p.early_rows(1), 3);
  const std::vector<RowMessage> m = p.messages(1);
  // Expert 0: tile 0 (8 rows: 3 + 3 + 2), tile 1 (2 rows); expert 1: tile 0 (3 rows).
  ASSERT_EQ(m.size(), 5U);
  EXPECT_EQ(m[0], (RowMessage{.peer = 1, .expert = 0, .tile = 0, .first = 0, .rows = 3, .at = 0}));
  EXPECT_EQ(m[2], (RowMessage{.peer = 1, .expert = 0, .tile = 0, .first = 6, .rows = 2, .at = 6 * 21000}));
  EXPECT_EQ(m[3], (RowMessage{.peer = 1, .expert = 0, .tile = 1, .first = 8, .rows = 2, .at = 8 * 21000}));
  EXPECT_EQ(m[4], (RowMessage{.peer = 1, .expert = 1, .tile = 0, .first = 0, .rows = 3, .at = 10 * 21000}));
  EXPECT_EQ(m[4].tag(2), 2);
  EXPECT_EQ(m[3].tag(2), 1);
  EXPECT_EQ(p.message_count(1), 5);
}

// A small call on one machine: each peer's rows in one message; with carry,
// the heads first, 64-byte aligned, each before its peer's rows.
TEST(MessagePlan, OneMessagePerPeerAndHeadsInTheSendArea) {
  MessagePolicy policy;
  policy.bytes = MessagePolicy::kOffNodeBytes;
  policy.split_peer = {0, 0, 0};
  policy.carry = true;
  const MessageCall call{.rank = 1,
                         .size = 3,
                         .experts = 1,
                         .row_bytes = 100,
                         .tile_rows = 128,
                         .carry = true,
                         .head_prefix_bytes = 88,
                         .head_min_room = kHeadMinRoom};
  const std::vector<std::int64_t> counts = {2, 7, 0};
  const MessagePlan p = MessagePlan::sends(policy, call, counts);
  EXPECT_EQ(p.route(0), PeerRoute::whole);
  EXPECT_EQ(p.route(2), PeerRoute::none);
  EXPECT_EQ(p.head_at(0), 0);
  EXPECT_EQ(p.area_at(0), 88);
  EXPECT_EQ(p.head_at(2), 320);  // 88 + 200 rounded up to 64
  EXPECT_EQ(p.area_at(2), -1);
  EXPECT_EQ(p.area_bytes(), 320 + 88);
  EXPECT_TRUE(p.head_may_carry(0));
  EXPECT_FALSE(p.head_may_carry(2));
  EXPECT_EQ(p.head_bytes(2), 288);
  EXPECT_EQ(p.early_rows(0), 0);
  const MessagePlan r = MessagePlan::receives(policy, call, counts);
  EXPECT_EQ(r.head_room(), 64512);  // 63 KiB (more than the largest prefix), a multiple of 64
  EXPECT_TRUE(r.head_fits(0, 2));
  EXPECT_FALSE(r.head_fits(0, 3));
  EXPECT_EQ(r.area_at(0), 0);
  EXPECT_EQ(r.area_at(2), 200);
  EXPECT_EQ(r.area_bytes(), 200);
}

// Empty peers send and receive nothing (no head without carry); a group of one has no messages.
TEST(MessagePlan, EmptyPeersAndGroupsOfOne) {
  MessagePolicy policy;
  policy.bytes = 0;
  const MessageCall call{.rank = 0, .size = 1, .experts = 3, .row_bytes = 8, .tile_rows = 4};
  const std::vector<std::int64_t> counts = {9, 0, 4};
  const MessagePlan p = MessagePlan::sends(policy, call, counts);
  EXPECT_EQ(p.route(0), PeerRoute::none);
  EXPECT_TRUE(p.messages(0).empty());
  EXPECT_EQ(p.area_bytes(), 0);
  const MessageCall two{.rank = 0, .size = 2, .experts = 3, .row_bytes = 8, .tile_rows = 4};
  const std::vector<std::int64_t> none = {1, 2, 3, 0, 0, 0};
  const MessagePlan q = MessagePlan::receives(policy, two, none);
  EXPECT_EQ(q.route(1), PeerRoute::none);
  EXPECT_EQ(q.message_count(1), 0);
  EXPECT_EQ(q.area_bytes(), 0);
}

// Counts far beyond what a test can list: the plan's arithmetic does not
// overflow, and counts its messages without listing them.
TEST(MessagePlan, HugeCounts) {
  MessagePolicy policy;
  policy.bytes = 1;  // one row per message
  const std::int64_t big = std::int64_t{1} << 40;
  const MessageCall call{.rank = 1, .size = 2, .experts = 2, .row_bytes = 14336, .tile_rows = 128};
  const std::vector<std::int64_t> counts = {big, big + 5, 0, 0};
  const MessagePlan r = MessagePlan::receives(policy, call, counts);
  EXPECT_EQ(r.route(0), PeerRoute::tiles);
  EXPECT_EQ(r.rows(0), 2 * big + 5);
  EXPECT_EQ(r.block_first(0, 1), big);
  EXPECT_EQ(r.message_rows(0), 1);
  EXPECT_EQ(r.message_count(0), 2 * big + 5);
  EXPECT_EQ(r.area_bytes(), (2 * big + 5) * 14336);
  std::vector<RowMessage> last;
  r.tile_messages(0, 1, big / 128 * 128, 5 + big % 128, last);
  ASSERT_EQ(last.size(), 5U);
  EXPECT_EQ(last.back().first, big + 4);
}

}  // namespace
