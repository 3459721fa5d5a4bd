// What each rank brings to the cross-rank count check (docs/spec.md §2), and
// the check of everything but the counts themselves.
//
// A rank's CallHeader is its call's shape (op, e, dtype, row width, list
// lengths), a 128-bit digest of its count lists (the group's shortcut when
// every list is the one of its last good call) and two things the group
// learns from every rank at once: its largest block in row tiles (the tag
// space a transport with tags needs) and its most bytes for one peer (whether
// the next call may carry its rows in heads, D56). On the wire a header is
// kWords int64 values, in the order of to_words (pinned: MPI ranks built
// before and after must agree).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "comm/communicator.hpp"

namespace gmmav::comm {

/// 128 bits identifying a rank's count lists (two independent 64-bit mixes:
/// a false "unchanged" needs both to collide, ~2^-128).
struct CountDigest {
  std::uint64_t a = 0, b = 0;
  friend bool operator==(const CountDigest&, const CountDigest&) = default;
};
CountDigest digest_of(std::span<const std::int64_t> send, std::span<const std::int64_t> recv);

/// What every rank of a call must agree on besides the counts.
struct CallShape {
  Op op = Op::combine;
  std::int64_t experts = 0;
  DType dtype = DType::f16;
  std::int64_t row_width = 0;
  std::int64_t send_length = 0;  ///< sendCounts' length (e * W, checked locally before the meet)
  std::int64_t recv_length = 0;  ///< recvCounts' length
  bool same_as(const CallShape& o) const {
    return op == o.op && experts == o.experts && dtype == o.dtype && row_width == o.row_width && send_length == o.send_length &&
           recv_length == o.recv_length;
  }
};
CallShape shape_of(const CallInfo& c);

/// Throws Errc::count_mismatch naming the first disagreement: rank 0's op, e,
/// dtype and row width against every other rank's in rank order, then every
/// rank's list lengths against e * W. Deterministic: every rank that runs it
/// on the same shapes throws the same error.
void check_shapes(std::span<const CallShape> all);

struct CallHeader {
  /// e, dtype, row width, list length, digest a, digest b, largest block in tiles, op, most bytes for one peer.
  static constexpr int kWords = 9;
  CallShape shape;
  CountDigest digest;
  std::int64_t max_tiles = 1;   ///< this rank's largest block, in row tiles (at least 1)
  std::int64_t peer_bytes = 0;  ///< the most bytes this rank sends one peer (itself excluded)

  void to_words(std::int64_t* out) const;
  /// A header from its words. One list length travels: both lists have it
  /// (each rank checked its lists' lengths before the meet).
  static CallHeader from_words(const std::int64_t* words);
};
CallHeader header_of(const CallInfo& mine, int rank);

}  // namespace gmmav::comm
