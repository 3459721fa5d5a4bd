// The cross-rank count check of one call, as a non-blocking state machine
// over a transport's collectives — one algorithm for every backend whose
// ranks do not share memory (MPI, torch.distributed).
//
// Every rank gathers every rank's header (call_header.hpp); the shapes must
// agree (check_shapes); when every digest equals the group's last good call
// the call passes as that one did. Otherwise each rank checks only its own
// column: an all-to-all brings it, from every source s, the e counts s sends
// it, which it compares with its recvCounts; then every rank's first mismatch
// (or none) is gathered and every rank names the first of them
// (count_verdict.hpp) — the same verdict and message everywhere, for O(W e)
// work and data per rank. advance() never blocks, so the engine can compute
// the call's remote tiles into staging while the check's messages travel
// (D10): nothing is sent, and nothing is written to this rank's outputs,
// before the check passed.
// Small calls (D56): the headers and columns may instead come point to point,
// each in the one message a peer sends this rank (start_carried,
// head_arrived): no gather, no all-to-all, one message per peer.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "comm/call_header.hpp"
#include "comm/communicator.hpp"
#include "comm/count_verdict.hpp"

namespace gmmav::comm {

/// What a transport provides the count check: non-blocking collectives of
/// int64 over the group, one at a time. Buffers belong to the check and stay
/// valid until settled().
class CheckCollectives {
 public:
  virtual ~CheckCollectives() = default;
  /// Starts gathering `count` values from every rank: rank r's land at all[r*count].
  virtual void start_all_gather(const std::int64_t* mine, int count, std::int64_t* all) = 0;
  /// Starts an all-to-all of `count` values per pair: mine[d*count] goes to
  /// rank d, rank s's for this rank land at theirs[s*count].
  virtual void start_all_to_all(const std::int64_t* mine, int count, std::int64_t* theirs) = 0;
  /// True once the collective started last completed. Never blocks; throws
  /// gmmav::Error(Errc::internal) when the transport failed.
  virtual bool test() = 0;
  /// True when no collective is pending (its buffers may be freed). Never throws.
  virtual bool settled() noexcept = 0;
};

/// The largest tag a transport offers, for the check to refuse a call whose
/// tiles would not fit its tag space (every rank alike).
struct TagSpace {
  std::int64_t largest = INT64_MAX;
  const char* transport = "";  ///< named in the error
};

class CountCheck {
 public:
  CountCheck(std::unique_ptr<CheckCollectives> collectives, int rank, int size, TagSpace tags = {});

  /// Starts the check of a call (the header gather). The previous check must
  /// have finished (passed or failed). The caller serialises calls into the
  /// check and its transport (MPI: holds mpi::lock()), as for every method.
  void start(const CallInfo& mine);

  /// Starts the check of a call whose headers (and columns) travel in the
  /// peers' messages: no collective until head_arrived() delivered every peer's.
  void start_carried(const CallInfo& mine);
  /// The counts a head carries after this rank's header: its e counts for the
  /// destination when e <= kMaxCarriedColumn (else the all-to-all brings them).
  static constexpr std::int64_t kMaxCarriedColumn = 512;
  static bool carries_column(std::int64_t e) { return e <= kMaxCarriedColumn; }
  /// This rank's header words for the call being checked (CallHeader::kWords values).
  const std::int64_t* header() const { return header_; }
  /// Source s's header words, and its counts for this rank (null when not carried).
  void head_arrived(int s, const std::int64_t* header, const std::int64_t* column);

  /// One non-blocking step. True once the check has passed; throws
  /// gmmav::Error (the same on every rank) when it failed.
  bool advance();

  /// True when no collective of the check is pending in the transport.
  bool settled() noexcept { return collectives_->settled(); }

  /// What a timeout while the check is unfinished is waiting for.
  const char* waiting_for() const;

  /// After a call passed: row tiles per expert block in the tag space (the
  /// largest block's tile count over every rank).
  std::int64_t tag_stride() const { return tag_stride_; }
  /// After a call passed: the most bytes any rank sent any one peer in it
  /// (-1 before the first). The same on every rank.
  std::int64_t last_peer_bytes() const { return last_peer_bytes_; }

 private:
  enum class Stage { idle, heads, headers, columns, verdicts, passed };
  void set_header(const CallInfo& mine);
  bool headers_in();
  void start_columns();
  void start_verdicts();
  bool verdicts_in();
  bool conclude();
  std::int64_t experts() const { return header_[0]; }
  const std::int64_t* header_of_rank(int r) const {
    return headers_.data() + static_cast<std::size_t>(CallHeader::kWords) * static_cast<std::size_t>(r);
  }

  std::unique_ptr<CheckCollectives> collectives_;
  int rank_, size_;
  TagSpace tags_;
  std::atomic<Stage> stage_{Stage::idle};  // read by waiting_for() on any thread
  // Buffers of collectives live here, not on a caller's stack: one that timed
  // out is still pending in the transport and may write into them later.
  std::int64_t header_[CallHeader::kWords] = {};
  std::vector<std::int64_t> headers_;      // [r*kWords]: every rank's header
  std::vector<std::int64_t> send_, recv_;  // this call's lists
  std::vector<std::int64_t> column_;       // [s*e + j]: what source s sends this rank
  int heads_left_ = 0;                     // start_carried: peers whose head is still out
  bool columns_carried_ = false;           // start_carried: column_ filled by the heads
  std::int64_t verdict_[Mismatch::kWords] = {};
  std::vector<std::int64_t> verdicts_;    // [r*kWords]: every rank's first mismatch
  std::vector<CountDigest> last_digest_;  // per rank: the digest of the group's last call that passed
  std::int64_t tag_stride_ = 1;
  std::int64_t last_peer_bytes_ = -1;
};

}  // namespace gmmav::comm
