// Which MPI messages carry a call's rows between two ranks: a pure function of
// the group's message policy and one rank's view of the call (no MPI here).
//
// A sender and its receiver compute the same messages from the same inputs:
// the policy is the same on every rank (checked when the group is made), and
// once the count check passed the receiver's recv_counts from s are s's
// send_counts to it. Per pair of ranks the call's rows go one of two ways:
// - whole: every row for the peer in one message (tag 0), expert blocks in
//   order, when they fit the policy's message bytes (a small call);
// - tiles: one message per row tile of each (peer, expert) block, or a tile
//   cut into messages of message_rows(peer) rows (peers on another machine),
//   every message of a tile carrying the tile's tag (MPI matches messages of
//   one tag between two ranks in the order they were sent).
// When a call's headers travel in heads (D56, `carry`), each peer also gets a
// head on the heads communicator: this rank's header and counts (a prefix of
// head_prefix_bytes), then all of its rows for the peer when it may carry
// them (head_may_carry) and they were written in time; the receiver reads the
// count. Rows a head carried get no other message.
// This is the wire format: ranks built from different commits interoperate
// only while it stays the same (tests/comm/message_plan_test.cpp pins it).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace gmmav::comm {

/// How many rows each MPI message to (and from) a peer holds: a whole tile, or
/// less. The same on every rank (checked when the group is made), so a
/// receiver posts the same messages its peer sends.
struct MessagePolicy {
  /// Below Open MPI's TCP eager limit (64 KiB, its headers included).
  static constexpr std::int64_t kOffNodeBytes = 63 * 1024;
  std::int64_t bytes = 0;        ///< 0: one message per tile
  std::vector<char> split_peer;  ///< [rank]: tiles to/from it are split (empty: every peer)
  /// Every rank's pool workers may call MPI (thread level >= SERIALIZED): a
  /// small call's header may wait for its rows and travel with them (D56).
  bool carry = false;
  /// Heads carry rows only in groups this small (every rank keeps a head's
  /// room, ~67 KiB, for every peer).
  static constexpr int kMaxCarryRanks = 64;

  /// True when `rows_bytes` of a call's rows to (or from) one peer go as one message.
  bool one_message(std::int64_t rows_bytes) const { return bytes > 0 && rows_bytes > 0 && rows_bytes <= bytes; }

  /// Rows per message to or from `peer` for rows of `row_bytes` (at least a
  /// row; 0 = a whole tile).
  std::int64_t rows(int peer, std::int64_t row_bytes) const;
};

/// One rank's view of a call, as far as its messages depend on it.
struct MessageCall {
  int rank = 0;
  int size = 1;
  int experts = 0;  ///< e, local experts per rank
  std::int64_t row_bytes = 0;
  std::int64_t tile_rows = 1;  ///< the engine's rows per tile (Tiling::tile_rows)
  /// This call's headers travel in heads (D56); the same on every rank.
  bool carry = false;
  std::int64_t head_prefix_bytes = 0;  ///< carry: a head's bytes before its rows
  std::int64_t head_min_room = 0;      ///< carry: the largest prefix any rank's head may have
};

/// How a call's rows to or from one peer travel.
enum class PeerRoute : std::uint8_t {
  none,   ///< no rows (a head may still go)
  whole,  ///< one message of every row, tag 0
  tiles,  ///< per tile, or a tile's parts, tagged (expert, tile)
};

/// One MPI message of rows (not a head), as the end that plans it sees it.
struct RowMessage {
  int peer = 0;
  int expert = -1;         ///< tiles: the block's local expert; whole: -1
  std::int64_t tile = 0;   ///< tiles: the tile's index within the block
  std::int64_t first = 0;  ///< tiles: the message's first row within the block
  std::int64_t rows = 0;
  /// Receives: byte offset in the landing area. Whole sends: byte offset in
  /// the send area. Tile sends: byte offset from the rows handed to tile_messages.
  std::int64_t at = 0;
  /// Its MPI tag, given the call's tiles per block in the tag space.
  int tag(std::int64_t tag_stride) const { return expert < 0 ? 0 : static_cast<int>(expert * tag_stride + tile); }
  bool operator==(const RowMessage&) const = default;
};

/// The messages of one call in one direction (this rank's sends, or its
/// receives), per peer. Immutable once made; cheap queries.
class MessagePlan {
 public:
  /// This rank's sends: `send_counts` [d*e + j]. The send area holds, per
  /// peer in rank order, its head (carry; 64-byte aligned) then its whole
  /// message's rows (route whole).
  static MessagePlan sends(const MessagePolicy& policy, const MessageCall& call, std::span<const std::int64_t> send_counts);
  /// This rank's receives: `recv_counts` [s*e + j]. The landing area holds
  /// each source's rows in rank order, each source's messages in the order of
  /// messages(s).
  static MessagePlan receives(const MessagePolicy& policy, const MessageCall& call, std::span<const std::int64_t> recv_counts);

  int size() const { return call_.size; }
  int experts() const { return call_.experts; }
  std::int64_t row_bytes() const { return call_.row_bytes; }
  std::int64_t tile_rows() const { return call_.tile_rows; }
  bool carry() const { return call_.carry; }

  PeerRoute route(int peer) const { return peers_[index(peer)].route; }
  /// Every row of the call to (or from) the peer.
  std::int64_t rows(int peer) const { return peers_[index(peer)].rows; }
  /// Rows of block (peer, j).
  std::int64_t block_rows(int peer, int j) const { return counts_[block(peer, j)]; }
  /// Block (peer, j)'s first row among the peer's rows (expert blocks in order).
  std::int64_t block_first(int peer, int j) const { return block_first_[block(peer, j)]; }
  /// Rows per message of a tile (route tiles): a tile's rows when not split.
  std::int64_t message_rows(int peer) const { return peers_[index(peer)].message_rows; }
  /// Rows of a tile that may leave before the rest of it is written (split
  /// tiles only; Exchange::early_rows).
  std::int64_t early_rows(int peer) const;
  /// Byte offset of the peer's rows in the area: its whole message (sends),
  /// its region of the landing area (receives); -1 for a send not routed whole.
  std::int64_t area_at(int peer) const { return peers_[index(peer)].area_at; }
  /// Bytes of the area (sends: heads and whole messages; receives: landing).
  std::int64_t area_bytes() const { return area_bytes_; }

  /// Sends with carry: the peer's head's byte offset in the send area.
  std::int64_t head_at(int peer) const { return peers_[index(peer)].head_at; }
  /// Sends with carry: the head may carry every row for the peer (they fit in
  /// one message with the prefix, and this rank sends no peer tiles).
  bool head_may_carry(int peer) const { return peers_[index(peer)].head_may_carry; }
  /// Bytes of a head carrying `rows` rows.
  std::int64_t head_bytes(std::int64_t rows) const { return call_.head_prefix_bytes + rows * call_.row_bytes; }
  /// Receives with carry: the room kept for each peer's head (64-byte multiple).
  std::int64_t head_room() const { return head_room_; }
  /// Receives with carry: true when a head that says it carries `rows` rows
  /// of a source whose rows the plan expects is well formed.
  bool head_fits(int peer, std::int64_t rows) const;

  /// The messages of the rows [first, first + rows) of block (peer, j), all
  /// within one tile, in the order they are sent (route tiles). `at` is the
  /// byte offset from those rows' start.
  void tile_messages(int peer, int j, std::int64_t first, std::int64_t rows, std::vector<RowMessage>& out) const;
  /// Every row message to (or from) the peer, per expert, tile and part in
  /// order (receives: `at` in the landing area; whole sends: in the send area).
  std::vector<RowMessage> messages(int peer) const;
  /// How many messages messages(peer) would list, without listing them.
  std::int64_t message_count(int peer) const;

 private:
  struct Peer {
    PeerRoute route = PeerRoute::none;
    std::int64_t rows = 0;
    std::int64_t message_rows = 1;
    std::int64_t area_at = -1;
    std::int64_t head_at = -1;
    bool head_may_carry = false;
  };
  MessagePlan(const MessagePolicy& policy, const MessageCall& call, std::span<const std::int64_t> counts);
  std::size_t index(int peer) const { return static_cast<std::size_t>(peer); }
  std::size_t block(int peer, int j) const {
    return static_cast<std::size_t>(peer) * static_cast<std::size_t>(call_.experts) + static_cast<std::size_t>(j);
  }

  MessageCall call_;
  std::vector<std::int64_t> counts_;       // [peer*e + j]
  std::vector<std::int64_t> block_first_;  // [peer*e + j]
  std::vector<Peer> peers_;                // [peer]
  std::int64_t area_bytes_ = 0;
  std::int64_t head_room_ = 0;
};

}  // namespace gmmav::comm
