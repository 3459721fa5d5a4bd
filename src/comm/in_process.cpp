// The in-process backend: W ranks are threads of this process sharing memory.
//
// Every rank's y is addressable, so a sender writes its GEMM tiles straight to
// their final rows in the destination's y: no staging, no copy, no workspace.
// A call is two barriers: one after every rank has put its CallInfo in the
// call's table (meet: then each rank checks the contract on the same table),
// one at the end (finish). Calls alternate between two tables, so a rank that
// runs ahead into the next call never overwrites a table a slower rank may
// still be reading: it cannot get two calls ahead without that rank arriving
// at the next meet, after its reading is done. (A second barrier at the end of
// meet would do the same but costs a wake-up of every rank thread while the
// pool's workers hold the cores — Linux does not preempt them for it.)
#include "comm/in_process.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "comm/group_barrier.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

struct GroupState {
  GroupState(int w, std::chrono::milliseconds t, std::string n) : size(w), timeout(t), name(std::move(n)), barrier(w, t), slots{std::vector<CallInfo>(static_cast<std::size_t>(w)), std::vector<CallInfo>(static_cast<std::size_t>(w))} {}
  const int size;
  const std::chrono::milliseconds timeout;
  const std::string name;
  GroupBarrier barrier;
  std::mutex slots_mu;
  std::vector<CallInfo> slots[2];  // [call parity][rank]
};

class InProcessExchange final : public Exchange {
 public:
  InProcessExchange(std::shared_ptr<GroupState> g, int rank, std::vector<std::byte*> dest_rows, std::int64_t row_bytes)
      : g_(std::move(g)), rank_(rank), dest_rows_(std::move(dest_rows)), row_bytes_(row_bytes) {}

  void* rows_for(int dest, int j, std::int64_t first, std::int64_t) override {
    const int e = static_cast<int>(dest_rows_.size()) / g_->size;
    return dest_rows_[static_cast<std::size_t>(dest * e + j)] + first * row_bytes_;
  }
  void rows_done(int, int, std::int64_t, std::int64_t, void*) override { g_->barrier.note_progress(); }
  void progress() noexcept override { g_->barrier.note_progress(); }
  void finish() override { g_->barrier.arrive_and_wait(rank_, "the end of the call", /*progress_aware=*/true); }
  void abort(const std::string& reason) noexcept override {
    g_->barrier.break_group(fmt::format("group: rank {} failed during the call: {}; the group is broken, recreate it", rank_, reason));
  }

 private:
  std::shared_ptr<GroupState> g_;
  int rank_;
  std::vector<std::byte*> dest_rows_;  // [d*e + j]: first row of block (this rank's j) in d's y
  std::int64_t row_bytes_;
};

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<GroupState> g, int rank) : g_(std::move(g)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->size; }
  const std::string& name() const override { return g_->name; }
  std::chrono::milliseconds timeout() const override { return g_->timeout; }
  std::size_t workspace_bytes(const Plan&) const override { return 0; }

  std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte>) override {
    g_->barrier.throw_if_broken();
    std::vector<CallInfo>& table = g_->slots[calls_++ % 2];
    {
      std::lock_guard lk(g_->slots_mu);
      table[static_cast<std::size_t>(rank_)] = mine;
    }
    g_->barrier.arrive_and_wait(rank_, "the start of the call", false);
    // Every rank reads the same table, so every rank reaches the same verdict.
    std::vector<std::byte*> dest_rows;
    std::string verdict;
    Errc code = Errc::count_mismatch;
    std::string param;
    try {
      check_contract(table);
      const int e = mine.local_experts;
      const std::int64_t row_bytes = mine.n1 * static_cast<std::int64_t>(element_size(mine.dtype));
      dest_rows.resize(static_cast<std::size_t>(e) * static_cast<std::size_t>(g_->size));
      for (int d = 0; d < g_->size; ++d) {
        const CallInfo& peer = table[static_cast<std::size_t>(d)];
        std::int64_t row = 0;
        for (int g = 0; g < rank_ * e; ++g) row += peer.recv_counts[static_cast<std::size_t>(g)];
        for (int j = 0; j < e; ++j) {
          dest_rows[static_cast<std::size_t>(d * e + j)] = static_cast<std::byte*>(peer.y) + row * row_bytes;
          row += peer.recv_counts[static_cast<std::size_t>(rank_ * e + j)];
        }
      }
    } catch (const Error& err) {
      verdict = err.what();
      code = err.code();
      param = err.param();
    }
    if (!verdict.empty()) throw Error(code, param, verdict);
    return std::make_unique<InProcessExchange>(g_, rank_, std::move(dest_rows),
                                               mine.n1 * static_cast<std::int64_t>(element_size(mine.dtype)));
  }

 private:
  std::shared_ptr<GroupState> g_;
  int rank_;
  std::uint64_t calls_ = 0;  // this rank's meets so far: every rank's count advances in step
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
  for (int r = 0; r < world_size; ++r) out.push_back(std::make_shared<InProcessCommunicator>(g, r));
  return out;
}

}  // namespace gmmav::comm
