// The cross-rank count check of one MPI call, as a non-blocking state machine.
//
// Every rank gathers every rank's header (e, dtype, N1, list length, a
// 128-bit digest of its count lists, its largest block in tiles, its most
// bytes for one peer); when every digest equals the group's last good call the
// call passes as that one did.
// Otherwise each rank checks only its own column: an all-to-all brings it,
// from every source s, the e counts s sends it, which it compares with its
// recvCounts; then every rank's first mismatch (or none) is gathered and every
// rank names the first of them in (source, destination, expert) order — the
// same verdict and message everywhere, for O(W e) work and data per rank
// (gathering every rank's lists was O(W² e) per rank). advance() never
// blocks, so the engine can compute the call's remote tiles into staging
// while the check's messages travel (docs/decisions.md D10): nothing is sent,
// and nothing is written to this rank's outputs, before the check passed.
// Small calls (D56): the headers and columns may instead come point to point,
// each in the one message a peer sends this rank (start_carried, head_arrived):
// no gather, no all-to-all, one message per peer as in a plain AlltoAllv.
#pragma once

#include <mpi.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <vector>

#include "comm/communicator.hpp"

namespace gmmav::comm {

/// 128 bits identifying a rank's count lists (two independent 64-bit mixes:
/// a false "unchanged" needs both to collide, ~2^-128).
struct CountDigest {
  std::uint64_t a = 0, b = 0;
};
CountDigest digest_of(const std::vector<std::int64_t>& send, const std::vector<std::int64_t>& recv);

class MpiCountCheck {
 public:
  /// `tag_ub`: the largest MPI tag; a call whose tiles need more fails the check.
  MpiCountCheck(MPI_Comm comm, int rank, int size, int tag_ub);

  /// Starts the check of a call (the header gather). The caller holds
  /// mpi::lock(). The previous check must have finished (passed or failed).
  void start(const CallInfo& mine);

  /// Starts the check of a call whose headers (and columns) travel in the
  /// peers' messages: no collective until head_arrived() delivered every
  /// peer's. The caller holds mpi::lock().
  void start_carried(const CallInfo& mine);
  /// Values of a head's prefix: this rank's header, then (when e <=
  /// kMaxCarriedColumn) its e counts for the destination.
  static constexpr int kHeader =
      9;  // e, dtype, row width, list length, digest a, digest b, largest block in tiles, op, most bytes for one peer
  static constexpr std::int64_t kMaxCarriedColumn = 512;
  static bool carries_column(std::int64_t e) { return e <= kMaxCarriedColumn; }
  /// This rank's header for the call being checked (kHeader values).
  const std::int64_t* header() const { return header_; }
  /// Source s's header, and its counts for this rank (null when not carried:
  /// then e > kMaxCarriedColumn and the all-to-all brings them).
  void head_arrived(int s, const std::int64_t* header, const std::int64_t* column);

  /// After a call passed: the most bytes any rank sent any one peer in it
  /// (-1 before the first). The same on every rank.
  std::int64_t last_peer_bytes() const { return last_peer_bytes_; }

  /// One non-blocking step. True once the check has passed; throws
  /// gmmav::Error (the same on every rank) when it failed. The caller holds
  /// mpi::lock() and serialises calls.
  bool advance();

  /// True when no collective of the check is pending in MPI (its buffers may
  /// be freed). Tests it once. The caller holds mpi::lock().
  bool settled();

  /// What a timeout while the check is unfinished is waiting for.
  const char* waiting_for() const;

  /// After it passed: row tiles per expert block in the tag space (the
  /// largest block's tile count over every rank).
  std::int64_t tag_stride() const { return tag_stride_; }

 private:
  enum class Stage { idle, heads, headers, columns, verdicts, passed };
  static constexpr int kVerdict = 3;  // first mismatch in this rank's column: key (or kNone), sent, received
  static constexpr std::int64_t kNone = INT64_MAX;
  void set_header(const CallInfo& mine);
  bool test(MPI_Request* req);
  void check_column();
  [[noreturn]] void refuse(const std::int64_t* verdict) const;
  bool conclude();

  MPI_Comm comm_;
  int rank_, size_, tag_ub_;
  std::atomic<Stage> stage_{Stage::idle};  // read by waiting_for() on any thread
  MPI_Request req_ = MPI_REQUEST_NULL;
  // Buffers of collectives live here, not on a caller's stack: one that timed
  // out is still pending in MPI and may write into them later.
  std::int64_t header_[kHeader] = {};
  std::vector<std::int64_t> headers_;
  std::vector<std::int64_t> send_, recv_;  // this call's lists
  std::vector<std::int64_t> column_;       // [s*e + j]: what source s sends this rank
  int heads_left_ = 0;                     // start_carried: peers whose head is still out
  bool columns_carried_ = false;           // start_carried: column_ filled by the heads
  std::int64_t verdict_[kVerdict] = {};
  std::vector<std::int64_t> verdicts_;
  // Per rank: the digest of the group's last call that passed.
  std::vector<CountDigest> last_digest_;
  std::int64_t tag_stride_ = 1;
  std::int64_t last_peer_bytes_ = -1;
};

}  // namespace gmmav::comm
