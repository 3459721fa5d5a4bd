// The in-process backend: W ranks are threads of this process sharing memory.
//
// Every rank's y is addressable, so a sender writes its GEMM tiles straight to
// their final rows in the destination's y: no staging, no copy, no workspace.
// A call is two barriers around a table of CallInfo (meet: arrive, check the
// contract, depart) and one barrier at the end (finish).
#include "comm/in_process.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "comm/group_barrier.hpp"
#include "common/fail.hpp"

namespace gmmav::comm {
namespace {

struct GroupState {
  GroupState(int w, std::chrono::milliseconds t, std::string n) : size(w), timeout(t), name(std::move(n)), barrier(w, t), slots(w) {}
  const int size;
  const std::chrono::milliseconds timeout;
  const std::string name;
  GroupBarrier barrier;
  std::mutex slots_mu;
  std::vector<CallInfo> slots;  // [rank], valid between the two meet barriers
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
    {
      std::lock_guard lk(g_->slots_mu);
      g_->slots[static_cast<std::size_t>(rank_)] = mine;
    }
    g_->barrier.arrive_and_wait(rank_, "the start of the call", false);
    // Every rank reads the same table, so every rank reaches the same verdict.
    std::vector<std::byte*> dest_rows;
    std::string verdict;
    Errc code = Errc::count_mismatch;
    std::string param;
    try {
      check_contract(g_->slots);
      const int e = mine.local_experts;
      const std::int64_t row_bytes = mine.n1 * static_cast<std::int64_t>(element_size(mine.dtype));
      dest_rows.resize(static_cast<std::size_t>(e) * static_cast<std::size_t>(g_->size));
      for (int d = 0; d < g_->size; ++d) {
        const CallInfo& peer = g_->slots[static_cast<std::size_t>(d)];
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
    // Nobody may overwrite its slot (next call) before everyone has read the table.
    g_->barrier.arrive_and_wait(rank_, "the count check", false);
    if (!verdict.empty()) throw Error(code, param, verdict);
    return std::make_unique<InProcessExchange>(g_, rank_, std::move(dest_rows),
                                               mine.n1 * static_cast<std::int64_t>(element_size(mine.dtype)));
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
  for (int r = 0; r < world_size; ++r) out.push_back(std::make_shared<InProcessCommunicator>(g, r));
  return out;
}

}  // namespace gmmav::comm
