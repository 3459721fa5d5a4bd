// The communicator interface every backend implements (in-process threads, MPI).
//
// Shaped by what the fused operator needs, not by a general collective library
// (see docs/architecture.md): one collective "meet" per call that exchanges the
// call's description, checks the cross-rank contract identically on every rank
// and hands back an Exchange; the Exchange then takes row tiles as the engine
// produces them, wherever they must go, and completes the call. Every wait has
// a timeout; a failure on one rank is made visible to the others.
//
// Layering: comm depends on plan (include/gmmav) and its transport only, never
// on the engine. What a backend needs to know about how the engine computes
// (rows per tile, how many threads hand it tiles at once, whether the rank's
// thread computes) is passed in through this interface (Tiling, CallInfo,
// caller_computes) — docs/architecture.md.
//
// Threading rules (every backend must honour them, the engine relies on them):
// - A Communicator belongs to one rank and is used by one thread at a time:
//   rank(), size(), name(), timeout(), workspace_bytes() may be called from any
//   thread; meet() only by the rank's orchestrating thread, one call in flight
//   (a second thread entering meet() while a call runs is refused, D23).
// - An Exchange lives for one call. rows_for, rows_done, progress and
//   wait_agreed are called concurrently by up to Tiling::compute_threads
//   threads (the compute pool's workers, and the rank's own thread when
//   caller_computes()); poll, needs_poll, wait_received, finish and abort only by the rank's
//   orchestrating thread (abort also after a worker threw; never concurrently
//   with finish).
// - No method of either calls back into the engine.
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

/// How the engine cuts a call into work, as far as a backend must know it
/// (staging sizes, MPI tags). Filled by the engine (engine::tiling()).
struct Tiling {
  /// Rows per tile: a tile of block (expert j, destination d) starts at a
  /// multiple of tile_rows within the block and has at most tile_rows rows
  /// (the last one of the block fewer). Part of the numerics contract (D3).
  std::int64_t tile_rows = 0;
  /// Threads that may call rows_for/rows_done at once (sizes the staging ring).
  int compute_threads = 1;
};

/// What one rank brings to a call's meeting. Copied by the backend.
struct CallInfo {
  Tiling tiling;
  /// The operator: the combine op's rows arrive in y by global expert
  /// (s*e + j), the dispatch op's expert-major (j, then s) — recv_offsets().
  /// Every rank of a call must run the same one.
  Op op = Op::combine;
  int local_experts = 0;
  DType dtype = DType::f16;
  std::int64_t row_width = 0;             // elements per exchanged row (Plan::exchange_width: N1 or H1)
  std::vector<std::int64_t> send_counts;  // [d*e + j]
  std::vector<std::int64_t> recv_counts;  // [s*e + j]
  void* y = nullptr;                      // where this rank's rows arrive, (sum(recv_counts), row_width)
  std::array<TensorBytes, 4> inputs{};    // gmmX, gmmWeight, mmX, mmWeight
  std::array<TensorBytes, 3> outputs{};   // y, mmY, permuteOut
};

/// First row in y of the block that rank s sends for local expert j, indexed
/// [s*e + j], for `mine`'s op (the same layout Plan::recv_block_offset gives).
std::vector<std::int64_t> recv_offsets(const CallInfo& mine);

/// G_j, the rows of local expert j's GEMM, indexed [j], for `mine`'s op (the
/// same totals Plan::group_rows gives): what the dispatch op waits for per expert.
std::vector<std::int64_t> group_rows(const CallInfo& mine);

/// One call's data movement as one rank sees it. Used by one thread (the
/// rank's orchestrating thread) except rows_for/rows_done/progress/wait_agreed,
/// which the compute threads call concurrently (see the threading rules above).
class Exchange {
 public:
  virtual ~Exchange() = default;
  /// Where to write `rows` rows of block (local expert j -> rank `dest`),
  /// starting at row `first` of that block: the peer's y itself where it is
  /// addressable, staging memory otherwise. Rows are row_width wide, contiguous.
  virtual void* rows_for(int dest, int j, std::int64_t first, std::int64_t rows) = 0;
  /// Those rows are written: move them on (nothing to do where written in place).
  /// Where early_rows(dest) > 0 a tile may be reported in parts: consecutive row
  /// ranges of the tile rows_for handed out, each a multiple of early_rows(dest)
  /// rows except the tile's last.
  virtual void rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) = 0;
  /// Rows of a tile for `dest` that may leave before the rest of the tile is
  /// written (its messages are that small); 0: report whole tiles only.
  virtual std::int64_t early_rows(int /*dest*/) const { return 0; }
  /// Some work finished on this rank (keeps progress-aware waits of peers alive).
  virtual void progress() noexcept = 0;
  /// Returns once the group agreed to the call (the cross-rank check passed);
  /// throws its error otherwise. A backend may hand out the Exchange while
  /// that check is still travelling (MPI); nothing may be written to this
  /// rank's outputs before it passed: rows_for waits for it for rows that stay
  /// on this rank, the engine calls this before it writes mmY. Called by pool
  /// workers. Default: meet() already checked.
  virtual void wait_agreed() {}
  /// True once the group agreed to the call (wait_agreed would return at
  /// once); never blocks. Work meant for this rank's outputs that finds it
  /// false may be computed aside and written after wait_agreed.
  virtual bool agreed() const { return true; }
  /// Called repeatedly by the rank's orchestrating thread while the pool
  /// computes: backends that must drive their transport (MPI's weak progress)
  /// start queued sends and test requests here. Never blocks.
  virtual void poll() {}
  /// True when poll() does something (the engine skips polling otherwise).
  virtual bool needs_poll() const { return false; }
  /// Dispatch op: true when wait_received() is implemented (the engine then
  /// starts each expert's GEMMs once its rows are in, before the call's other
  /// rows; otherwise after finish()).
  virtual bool reports_arrivals() const { return false; }
  /// Dispatch op: returns once every row of local expert j's group (from
  /// every source) is in y. Orchestrating thread only; throws as finish().
  virtual void wait_received(int /*j*/) {}
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
  /// Workspace bytes a call with this plan (cut as `tiling` says) should get
  /// on this backend (what GetWorkspaceSize reports), and the least it can run
  /// with (slower).
  virtual std::size_t workspace_bytes(const Plan& plan, const Tiling& tiling) const = 0;
  virtual std::size_t min_workspace_bytes(const Plan& plan, const Tiling& tiling) const { return workspace_bytes(plan, tiling); }
  /// The backend's thread policy: true when the rank's own thread should
  /// compute tiles beside the pool's workers (one rank per process, MPI)
  /// instead of waiting for them (many ranks per process). Read once by the
  /// API layer when the group is created (it sets the process's pool).
  virtual bool caller_computes() const { return false; }
  /// Collective, once per call on every rank. Exchanges CallInfo, checks the
  /// cross-rank contract (same verdict and message on every rank, before any
  /// byte moves or any output is written), and returns the call's Exchange —
  /// possibly before the check is in (see Exchange::wait_agreed). Throws
  /// gmmav::Error.
  virtual std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte> workspace) = 0;
};

/// Checks the cross-rank contract of docs/spec.md §2 over every rank's CallInfo
/// (indexed by rank; by value or by pointer): same op, e, dtype and row width everywhere, and
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
