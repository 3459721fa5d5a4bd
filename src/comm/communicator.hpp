// The communicator interface every backend implements (in-process threads, MPI).
//
// Shaped by what the fused operator needs, not by a general collective library
// (see docs/architecture.md): one collective "meet" per call that exchanges the
// call's description, checks the cross-rank contract identically on every rank
// and hands back an Exchange; the Exchange then takes row tiles as the engine
// produces them, wherever they must go, and completes the call. Every wait has
// a timeout; a failure on one rank is made visible to the others.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gmmav/plan.hpp"
#include "gmmav/types.hpp"

namespace gmmav::comm {

/// A tensor's bytes, for the overlap check across ranks that share an address space.
struct TensorBytes {
  const void* data = nullptr;
  std::size_t bytes = 0;  ///< 0: absent
  const char* name = "";  ///< the vendor parameter name
};

/// What one rank brings to a call's meeting. Copied by the backend.
struct CallInfo {
  int local_experts = 0;
  DType dtype = DType::f16;
  std::int64_t n1 = 0;
  std::vector<std::int64_t> send_counts;  // [d*e + j]
  std::vector<std::int64_t> recv_counts;  // [s*e + j]
  void* y = nullptr;                      // this rank's output, (sum(recv_counts), n1)
  std::array<TensorBytes, 4> inputs{};    // gmmX, gmmWeight, mmX, mmWeight
  std::array<TensorBytes, 2> outputs{};   // y, mmY
};

/// One call's data movement as one rank sees it. Used by one thread (the
/// rank's orchestrating thread) except rows_for/rows_done/progress, which the
/// compute pool's workers call concurrently.
class Exchange {
 public:
  virtual ~Exchange() = default;
  /// Where to write `rows` rows of block (local expert j -> rank `dest`),
  /// starting at row `first` of that block: the peer's y itself where it is
  /// addressable, staging memory otherwise. Rows are n1 wide, contiguous.
  virtual void* rows_for(int dest, int j, std::int64_t first, std::int64_t rows) = 0;
  /// Those rows are written: move them on (nothing to do where written in place).
  virtual void rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) = 0;
  /// Some work finished on this rank (keeps progress-aware waits of peers alive).
  virtual void progress() noexcept = 0;
  /// Returns once the group agreed to the call (the cross-rank check passed);
  /// throws its error otherwise. A backend may hand out the Exchange while
  /// that check is still travelling (MPI); nothing may be written to this
  /// rank's outputs before it passed: rows_for waits for it for rows that stay
  /// on this rank, the engine calls this before it writes mmY. Called by pool
  /// workers. Default: meet() already checked.
  virtual void wait_agreed() {}
  /// Called repeatedly by the rank's orchestrating thread while the pool
  /// computes: backends that must drive their transport (MPI's weak progress)
  /// start queued sends and test requests here. Never blocks.
  virtual void poll() {}
  /// True when poll() does something (the engine skips polling otherwise).
  virtual bool needs_poll() const { return false; }
  /// Waits until every row this rank sends has left and every row it receives
  /// has arrived. Throws gmmav::Error (timeout, peer failure).
  virtual void finish() = 0;
  /// This rank failed mid-call: make the peers fail instead of waiting.
  virtual void abort(const std::string& reason) noexcept = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;
  /// Workspace bytes a call with this plan should get on this backend (what
  /// GetWorkspaceSize reports), and the least it can run with (slower).
  virtual std::size_t workspace_bytes(const Plan& plan) const = 0;
  virtual std::size_t min_workspace_bytes(const Plan& plan) const { return workspace_bytes(plan); }
  /// Collective, once per call on every rank. Exchanges CallInfo, checks the
  /// cross-rank contract (same verdict and message on every rank, before any
  /// byte moves or any output is written), and returns the call's Exchange —
  /// possibly before the check is in (see Exchange::wait_agreed). Throws
  /// gmmav::Error.
  virtual std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte> workspace) = 0;
};

/// Checks the cross-rank contract of SPEC §2 over every rank's CallInfo
/// (indexed by rank; by value or by pointer): same e, dtype and N1 everywhere, and
/// recv@d[s*e + j] == send@s[d*e + j]. Throws Errc::count_mismatch naming the
/// first mismatching (source, destination, expert). Deterministic, so every
/// rank that runs it on the same data throws the same error.
void check_contract(std::span<const CallInfo* const> all);
void check_contract(std::span<const CallInfo> all);

/// For ranks sharing one address space: throws Errc::invalid_argument when
/// any rank's output overlaps any other tensor of any rank (an input or an
/// output; inputs may overlap inputs). Sorts the intervals: O(W log W).
/// Deterministic, like check_contract.
void check_no_overlap_across_ranks(std::span<const CallInfo* const> all);

}  // namespace gmmav::comm
