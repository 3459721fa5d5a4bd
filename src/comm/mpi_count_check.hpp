// The cross-rank count check of one MPI call, as a non-blocking state machine.
//
// Every rank gathers every rank's header (e, dtype, N1, list length and a
// 128-bit digest of its count lists); when every digest equals the group's
// last good call the lists are reused, otherwise a second gather brings them.
// Then check_contract runs on the same data everywhere, so every rank reaches
// the same verdict. advance() never blocks, so the engine can compute the
// call's remote tiles into staging while the check's messages travel
// (docs/decisions.md D10): nothing is sent, and nothing is written to this
// rank's outputs, before the check passed.
#pragma once

#include <mpi.h>

#include <atomic>
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

  /// One non-blocking step. True once the check has passed; throws
  /// gmmav::Error (the same on every rank) when it failed. The caller holds
  /// mpi::lock() and serialises calls.
  bool advance();

  /// What a timeout while the check is unfinished is waiting for.
  const char* waiting_for() const;

  /// After it passed: row tiles per expert block in the tag space (the
  /// largest block's tile count over every rank).
  std::int64_t tag_stride() const { return tag_stride_; }

 private:
  enum class Stage { idle, headers, lists, passed };
  static constexpr int kHeader = 6;
  bool test(MPI_Request* req);
  bool conclude();

  MPI_Comm comm_;
  int rank_, size_, tag_ub_;
  std::atomic<Stage> stage_{Stage::idle};  // read by waiting_for() on any thread
  MPI_Request req_ = MPI_REQUEST_NULL;
  // Gather buffers live here, not on a caller's stack: a gather that timed out
  // is still pending in MPI and may write into them later.
  std::int64_t header_[kHeader] = {};
  std::vector<std::int64_t> headers_;
  std::vector<std::int64_t> mine_counts_, counts_;
  std::vector<CallInfo> all_;
  bool as_last_call_ = false;
  std::int64_t tag_stride_ = 1;
  // Per rank: the count lists and digest of the group's last call that passed.
  std::vector<CallInfo> last_lists_;
  std::vector<CountDigest> last_digest_;
};

}  // namespace gmmav::comm
