// The count half of the cross-rank check (docs/spec.md §2): recv@d[s*e + j]
// == send@s[d*e + j] for every (source s, destination d, expert j).
//
// Each rank d checks its own column — from every source s, the e counts s
// sends d — against its recvCounts, and finds its first Mismatch; the group's
// verdict is the first of every rank's in (source, destination, expert) order,
// and refuse() is the one statement of its error. Every backend reaches its
// verdict through these: MPI and torch.distributed with each rank's column
// brought by a collective (count_check.hpp), the in-process backend with
// every column read from the shared table (contract.cpp). So the same counts
// give the same verdict and message on every backend.
#pragma once

#include <climits>
#include <cstdint>
#include <span>

namespace gmmav::comm {

struct Mismatch {
  static constexpr int kWords = 3;  ///< on the wire: key, sent, received
  static constexpr std::int64_t kNone = INT64_MAX;
  std::int64_t key = kNone;   ///< (s*W + d)*e + j: orders mismatches as (source, destination, expert)
  std::int64_t sent = 0;      ///< send@s[d*e + j]
  std::int64_t received = 0;  ///< recv@d[s*e + j]
  bool none() const { return key == kNone; }
  void to_words(std::int64_t* out) const {
    out[0] = key;
    out[1] = sent;
    out[2] = received;
  }
  static Mismatch from_words(const std::int64_t* w) { return {w[0], w[1], w[2]}; }
};

/// Rank `rank`'s first mismatch: column[s*e + j] (what s sends it for expert
/// j) against recv[s*e + j] (its recvCounts), over W = size sources.
Mismatch column_mismatch(std::span<const std::int64_t> column, std::span<const std::int64_t> recv, int rank, int size,
                         std::int64_t e);

/// The group's first mismatch (none when every rank's is none).
Mismatch first_mismatch(std::span<const Mismatch> all);

/// Throws the error of mismatch `m` (not none) in a group of `size` ranks with e local experts.
[[noreturn]] void refuse(const Mismatch& m, int size, std::int64_t e);

}  // namespace gmmav::comm
