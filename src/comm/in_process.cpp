// The in-process backend: W ranks are threads of this process sharing memory.
//
// Every rank's y is addressable, so a sender writes its GEMM tiles straight to
// their final rows in the destination's y: no staging, no copy, no workspace.
// A call is two barriers: one after every rank has put its CallInfo in the
// call's table (meet), one at the end (finish). The last rank to arrive at
// the meet checks the call once for the whole group — the contract (docs/spec.md §2)
// and overlaps across ranks — and publishes the verdict before anyone leaves,
// so every rank throws the same error and the check costs O(W²e), not W times
// that. Each rank writes its slot under the barrier's lock, stamped with the
// barrier round, so the check never reads a slot left from an earlier call.
// Tables alternate with the round, so a rank that runs ahead (after a refused
// meet there is no finish barrier) never overwrites a table a slower rank may
// still be reading: it cannot get two rounds ahead without that rank arriving
// at the next one, after its reading is done. (A second barrier at the end of
// meet would do the same but costs a wake-up of every rank thread while the
// pool's workers hold the cores — Linux does not preempt them for it.)
// A rank's communicator serves one call at a time: a second thread entering
// it while a call is in flight is refused at once (it would otherwise be
// counted as another rank or mistaken for the next phase).
#include "comm/in_process.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "comm/group_barrier.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

// The dispatch op's arrivals at one rank: [j] = rows of expert j's group not
// yet written by their senders (counted down in rows_done; the sender that
// reaches 0 wakes the receiver). Shared by the receiver and its senders.
struct PendingRows {
  explicit PendingRows(std::size_t e) : rows(std::make_unique<std::atomic<std::int64_t>[]>(e)) {}
  std::unique_ptr<std::atomic<std::int64_t>[]> rows;
};

// One meet's table: every rank's call information (a pointer into the rank's
// own meet frame, valid while the round is open: every rank is blocked in it
// then; cleared once checked), its y and the row offsets of its y blocks (read
// after the round), the round each slot was written in, and the verdict.
struct MeetTable {
  explicit MeetTable(int w)
      : infos(static_cast<std::size_t>(w), nullptr),
        ys(static_cast<std::size_t>(w), nullptr),
        recv_offsets(static_cast<std::size_t>(w)),
        pending(static_cast<std::size_t>(w)),
        rounds(static_cast<std::size_t>(w), kNever) {}
  static constexpr std::uint64_t kNever = ~std::uint64_t{0};
  std::vector<const CallInfo*> infos;                   // [rank]
  std::vector<void*> ys;                                // [rank]
  std::vector<std::vector<std::int64_t>> recv_offsets;  // [rank][s*e + j]: first row of that block in its y
  std::vector<std::shared_ptr<PendingRows>> pending;    // [rank]: the dispatch op's rows still to arrive, per expert
  std::vector<std::uint64_t> rounds;                    // [rank]
  std::optional<Error> verdict;                         // set by the last rank to arrive
};

struct GroupState {
  GroupState(int w, std::chrono::milliseconds t, std::string n)
      : size(w),
        timeout(t),
        name(std::move(n)),
        barrier(w, t),
        tables{MeetTable(w), MeetTable(w)},
        in_call(std::make_unique<std::atomic<bool>[]>(static_cast<std::size_t>(w))),
        writing(std::make_unique<std::atomic<bool>[]>(static_cast<std::size_t>(w))) {}
  const int size;
  const std::chrono::milliseconds timeout;
  const std::string name;
  GroupBarrier barrier;
  MeetTable tables[2];                           // [round parity]; written under the barrier's lock
  std::unique_ptr<std::atomic<bool>[]> in_call;  // [rank]: a call is in flight on that rank's communicator
  // [rank]: that rank's tasks may still write into its peers' memory in the current call (set when
  // it arrives at the meet, cleared when it leaves the call or aborts it): a rank that aborts waits
  // for every flag to clear before it returns, so no peer writes into memory its caller may free.
  std::unique_ptr<std::atomic<bool>[]> writing;

  void wait_until_no_writer() const {
    for (int sleep_us = 10;; sleep_us = std::min(2 * sleep_us, 1000)) {
      bool any = false;
      for (int r = 0; r < size; ++r) any = any || writing[static_cast<std::size_t>(r)].load(std::memory_order_acquire);
      if (!any) return;
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    }
  }
};

// Holds a rank's "call in flight" flag for one call.
class CallClaim {
 public:
  CallClaim(std::atomic<bool>& flag, int rank) : flag_(&flag) {
    if (flag.exchange(true, std::memory_order_acquire))
      fail(Errc::invalid_argument, "group",
           "rank {} arrived twice: its communicator is already in a call on another thread (a Comm is used by one thread at a "
           "time)",
           rank);
  }
  CallClaim(CallClaim&& o) noexcept : flag_(std::exchange(o.flag_, nullptr)) {}
  CallClaim& operator=(CallClaim&&) = delete;
  ~CallClaim() {
    if (flag_ != nullptr) flag_->store(false, std::memory_order_release);
  }

 private:
  std::atomic<bool>* flag_;
};

// The verdict of a meet, once for the group (under the barrier's lock).
void judge(MeetTable& t, std::uint64_t round) noexcept {
  t.verdict.reset();
  try {
    for (std::size_t r = 0; r < t.rounds.size(); ++r)
      if (t.rounds[r] != round)  // cannot happen: every rank wrote its slot in this round
        fail(Errc::internal, "group", "rank {}'s call information is not from this call", r);
    check_contract(t.infos);
    check_no_overlap_across_ranks(t.infos);
  } catch (const Error& e) {
    t.verdict = e;
  } catch (const std::exception& e) {
    t.verdict = Error(Errc::internal, "", std::string("internal error checking the call: ") + e.what());
  }
  std::fill(t.infos.begin(), t.infos.end(), nullptr);  // their frames end with the round
}

class InProcessExchange final : public Exchange {
 public:
  InProcessExchange(std::shared_ptr<GroupState> g, int rank, CallClaim claim, std::vector<std::byte*> dest_rows,
                    std::int64_t row_bytes, std::shared_ptr<PendingRows> mine, std::vector<std::shared_ptr<PendingRows>> dests)
      : g_(std::move(g)),
        rank_(rank),
        claim_(std::move(claim)),
        dest_rows_(std::move(dest_rows)),
        row_bytes_(row_bytes),
        pending_(std::move(mine)),
        dest_pending_(std::move(dests)) {}
  ~InProcessExchange() override { stop_writing(); }

  void* rows_for(int dest, int j, std::int64_t first, std::int64_t) override {
    const int e = static_cast<int>(dest_rows_.size()) / g_->size;
    return dest_rows_[static_cast<std::size_t>(dest * e + j)] + first * row_bytes_;
  }
  void rows_done(int dest, int j, std::int64_t, std::int64_t rows, void*) override {
    g_->barrier.note_progress();
    if (dest_pending_.empty()) return;  // the combine op: nobody waits for single blocks
    if (dest_pending_[static_cast<std::size_t>(dest)]->rows[static_cast<std::size_t>(j)].fetch_sub(
            rows, std::memory_order_acq_rel) == rows)
      g_->barrier.wake();
  }
  bool reports_arrivals() const override { return pending_ != nullptr; }
  void wait_received(int j) override {
    const auto& left = pending_->rows[static_cast<std::size_t>(j)];
    g_->barrier.wait_until(rank_, fmt::format("the rows of its expert {}", j),
                           [&] { return left.load(std::memory_order_acquire) == 0; });
  }
  void progress() noexcept override { g_->barrier.note_progress(); }
  void finish() override { g_->barrier.arrive_and_wait(rank_, "the end of the call", /*progress_aware=*/true); }
  // Peers write straight into this rank's outputs and receive area: before the caller gets the
  // error (and may free them), every peer must have stopped computing for this call. Each peer
  // gets there: after the group breaks, every wait of theirs throws and their tasks are finite.
  void abort(const std::string& reason) noexcept override {
    g_->barrier.break_group(
        fmt::format("group: rank {} failed during the call: {}; the group is broken, recreate it", rank_, reason));
    stop_writing();
    g_->wait_until_no_writer();
  }

 private:
  // This rank's tasks have all returned (the engine returned or threw): it writes no more.
  void stop_writing() noexcept { g_->writing[static_cast<std::size_t>(rank_)].store(false, std::memory_order_release); }

  std::shared_ptr<GroupState> g_;
  int rank_;
  CallClaim claim_;
  std::vector<std::byte*> dest_rows_;  // [d*e + j]: first row of block (this rank's j) in d's y
  std::int64_t row_bytes_;
  std::shared_ptr<PendingRows> pending_;                    // this rank's arrivals (dispatch op), else null
  std::vector<std::shared_ptr<PendingRows>> dest_pending_;  // [d]: d's arrivals (dispatch op), else empty
};

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<GroupState> g, int rank) : g_(std::move(g)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->size; }
  const std::string& name() const override { return g_->name; }
  std::chrono::milliseconds timeout() const override { return g_->timeout; }
  std::size_t workspace_bytes(const Plan&, const Tiling&) const override { return 0; }

  std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte>) override {
    g_->barrier.throw_if_broken();
    CallClaim claim(g_->in_call[static_cast<std::size_t>(rank_)], rank_);
    // Built outside the lock; swapped into the table on arrival (the old slot is freed here, outside it too).
    std::vector<std::int64_t> offsets = recv_offsets(mine);
    const auto me = static_cast<std::size_t>(rank_);
    std::shared_ptr<PendingRows> pending;
    if (mine.op == Op::dispatch) {
      const std::vector<std::int64_t> rows = group_rows(mine);
      pending = std::make_shared<PendingRows>(rows.size());
      for (std::size_t j = 0; j < rows.size(); ++j) pending->rows[j].store(rows[j], std::memory_order_relaxed);
    }
    GroupBarrier::Hooks hooks;
    hooks.on_arrival = [&](std::uint64_t round) {
      MeetTable& t = g_->tables[round % 2];
      t.infos[me] = &mine;
      t.ys[me] = mine.y;
      std::swap(t.recv_offsets[me], offsets);
      t.pending[me] = pending;
      t.rounds[me] = round;
      // Before the round can complete: a peer that aborts later sees this rank as writing.
      g_->writing[me].store(true, std::memory_order_release);
    };
    hooks.on_complete = [&](std::uint64_t round) { judge(g_->tables[round % 2], round); };
    std::uint64_t round = 0;
    try {
      round = g_->barrier.arrive_and_wait(rank_, "the start of the call", false, hooks);
    } catch (...) {  // the round never completed: no rank computes
      g_->writing[me].store(false, std::memory_order_release);
      throw;
    }
    const MeetTable& table = g_->tables[round % 2];
    if (table.verdict) {  // the same on every rank: nobody computes
      g_->writing[me].store(false, std::memory_order_release);
      throw *table.verdict;
    }
    // Where this rank's blocks go in the peers' y, for the blocks that have
    // rows (a peer's table is read only where rows go: W ranks reading every
    // peer's entry would be W² cache misses even for an empty call).
    const int e = mine.local_experts;
    const std::int64_t row_bytes = mine.row_width * static_cast<std::int64_t>(element_size(mine.dtype));
    std::vector<std::byte*> dest_rows(static_cast<std::size_t>(e) * static_cast<std::size_t>(g_->size), nullptr);
    for (std::size_t b = 0; b < dest_rows.size(); ++b) {
      if (mine.send_counts[b] == 0) continue;
      const std::size_t d = b / static_cast<std::size_t>(e), j = b % static_cast<std::size_t>(e);
      const std::int64_t first = table.recv_offsets[d][me * static_cast<std::size_t>(e) + j];
      dest_rows[b] = static_cast<std::byte*>(table.ys[d]) + first * row_bytes;
    }
    std::vector<std::shared_ptr<PendingRows>> dest_pending;
    if (pending) dest_pending = table.pending;  // every rank runs the dispatch op: the check passed
    return std::make_unique<InProcessExchange>(g_, rank_, std::move(claim), std::move(dest_rows), row_bytes, std::move(pending),
                                               std::move(dest_pending));
  }

 private:
  std::shared_ptr<GroupState> g_;
  int rank_;
};

std::atomic<int> g_group_counter{0};

}  // namespace

std::vector<std::shared_ptr<Communicator>> create_in_process(int world_size, std::chrono::milliseconds timeout,
                                                             const std::string& name) {
  if (world_size < 1) fail(Errc::invalid_argument, "world_size", "expected >= 1, got {}", world_size);
  if (timeout.count() <= 0) fail(Errc::invalid_argument, "timeout", "expected > 0 ms, got {}", timeout.count());
  const std::string n = name.empty() ? fmt::format("gmmav-inproc-{}", g_group_counter.fetch_add(1)) : name;
  auto g = std::make_shared<GroupState>(world_size, timeout, n);
  std::vector<std::shared_ptr<Communicator>> out;
  out.reserve(static_cast<std::size_t>(world_size));
  for (int r = 0; r < world_size; ++r) out.push_back(std::make_shared<InProcessCommunicator>(g, r));
  return out;
}

}  // namespace gmmav::comm
