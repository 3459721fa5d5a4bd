// The torch.distributed backend (see torch_dist_communicator.hpp).
#include "torch_dist_communicator.hpp"

#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "comm/count_check.hpp"
#include "torch_check_collectives.hpp"
#include "torch_transport.hpp"

namespace py = pybind11;

namespace gmmav::python {
namespace {

class TorchDistExchange final : public comm::Exchange {
 public:
  TorchDistExchange(std::shared_ptr<TorchTransport> shared, int rank, int size, const comm::CallInfo& mine,
                    std::span<std::byte> workspace, std::chrono::milliseconds timeout)
      : shared_(std::move(shared)),
        me_(rank),
        W_(size),
        e_(mine.local_experts),
        row_bytes_(static_cast<std::size_t>(mine.row_width) * element_size(mine.dtype)),
        y_(static_cast<std::byte*>(mine.y)),
        staging_(workspace.data()),
        timeout_(timeout),
        send_(mine.send_counts),
        rows_to_(static_cast<std::size_t>(size), 0),
        stage_first_(static_cast<std::size_t>(size), 0),
        expert_first_(send_.size(), 0),
        recv_first_(comm::recv_offsets(mine)),
        recv_counts_(mine.recv_counts),
        done_(std::make_unique<std::atomic<std::int64_t>[]>(send_.size())),
        sent_(send_.size(), false) {
    std::int64_t staged = 0;
    for (int d = 0; d < W_; ++d) {
      std::int64_t in_block = 0;
      for (int j = 0; j < e_; ++j) {
        expert_first_[idx(d, j)] = in_block;
        in_block += send_[idx(d, j)];
      }
      rows_to_[static_cast<std::size_t>(d)] = in_block;
      if (d != me_) {
        stage_first_[static_cast<std::size_t>(d)] = staged;
        staged += in_block;
      }
    }
    for (std::size_t b = 0; b < send_.size(); ++b) done_[b].store(0, std::memory_order_relaxed);
    // One receive per (source, expert) block with rows, straight into its rows of y; the tag is
    // the expert (blocks of one peer may complete in any order; per tag, gloo keeps the order).
    shared_->call(me_, "irecv", [&](py::object& t) {
      for (int s = 0; s < W_; ++s) {
        if (s == me_) continue;
        for (int j = 0; j < e_; ++j) {
          const std::int64_t first = recv_first_[idx(s, j)], rows = mine_recv(s, j);
          if (rows == 0) continue;
          handles_.push_back(t.attr("irecv")(s, j, reinterpret_cast<std::uintptr_t>(y_ + first * row_bytes_), rows * row_bytes_));
        }
      }
      return 0;
    });
  }

  ~TorchDistExchange() override {
    py::gil_scoped_acquire gil;
    for (py::object& h : handles_) shared_->abandoned.push_back(std::move(h));  // a failed call's pending transfers
    handles_.clear();
  }

  void* rows_for(int dest, int j, std::int64_t first, std::int64_t /*rows*/) override {
    if (dest == me_) return y_ + static_cast<std::size_t>(recv_first_[idx(me_, j)] + first) * row_bytes_;
    return staging_ +
           static_cast<std::size_t>(stage_first_[static_cast<std::size_t>(dest)] + expert_first_[idx(dest, j)] + first) *
               row_bytes_;
  }
  void rows_done(int dest, int j, std::int64_t, std::int64_t rows, void*) override {
    if (dest != me_) done_[idx(dest, j)].fetch_add(rows, std::memory_order_acq_rel);
  }
  void progress() noexcept override {}
  bool needs_poll() const override { return true; }

  // The rank's thread, between tiles: start the message of every (peer, expert) block whose rows are all written.
  void poll() override {
    bool ready = false;
    for (int d = 0; d < W_ && !ready; ++d)
      for (int j = 0; j < e_ && !ready; ++j) ready = ready_to_send(d, j);
    if (!ready) return;
    start_sends(/*all=*/false);
  }

  void finish() override {
    start_sends(/*all=*/true);
    shared_->call(me_, "wait", [&](py::object& t) {
      py::list pending;
      for (py::object& h : handles_) pending.append(h);
      t.attr("wait")(pending, static_cast<std::int64_t>(timeout_.count()));
      handles_.clear();  // all complete (on an exception they stay, and are kept: see ~TorchDistExchange)
      return 0;
    });
  }

  void abort(const std::string& reason) noexcept override {
    // The peers are blocked in transfers this rank will never make: they fail at their timeout.
    // The group is unusable afterwards (messages of this call may still be in flight).
    shared_->broken_reason = "rank " + std::to_string(me_) + " failed mid-call: " + reason;
    shared_->broken.store(true, std::memory_order_release);
  }

 private:
  std::size_t idx(int r, int j) const {
    return static_cast<std::size_t>(r) * static_cast<std::size_t>(e_) + static_cast<std::size_t>(j);
  }
  std::int64_t mine_recv(int s, int j) const { return recv_counts_[idx(s, j)]; }
  bool ready_to_send(int d, int j) const {
    const std::size_t b = idx(d, j);
    return d != me_ && !sent_[b] && send_[b] > 0 && done_[b].load(std::memory_order_acquire) == send_[b];
  }
  void start_sends(bool all) {
    shared_->call(me_, "isend", [&](py::object& t) {
      for (int d = 0; d < W_; ++d)
        for (int j = 0; j < e_; ++j) {
          const std::size_t b = idx(d, j);
          if (d == me_ || sent_[b] || send_[b] == 0) continue;
          if (!all && !ready_to_send(d, j)) continue;
          const std::int64_t first = stage_first_[static_cast<std::size_t>(d)] + expert_first_[b];
          handles_.push_back(
              t.attr("isend")(d, j, reinterpret_cast<std::uintptr_t>(staging_ + static_cast<std::size_t>(first) * row_bytes_),
                              send_[b] * row_bytes_));
          sent_[b] = true;
        }
      return 0;
    });
  }

  std::shared_ptr<TorchTransport> shared_;
  const int me_, W_, e_;
  const std::size_t row_bytes_;
  std::byte* const y_;
  std::byte* const staging_;
  const std::chrono::milliseconds timeout_;
  const std::vector<std::int64_t> send_;
  std::vector<std::int64_t> rows_to_;                  // [d]
  std::vector<std::int64_t> stage_first_;              // [d]: first staging row of d's message
  std::vector<std::int64_t> expert_first_;             // [d*e + j]: first row of expert j inside d's message
  std::vector<std::int64_t> recv_first_;               // [s*e + j]: first row of that block in y (comm::recv_offsets)
  std::vector<std::int64_t> recv_counts_;              // [s*e + j]
  std::unique_ptr<std::atomic<std::int64_t>[]> done_;  // [d*e + j]: rows of that block written (workers)
  std::vector<bool> sent_;                             // [d*e + j] (the rank's thread only)
  std::vector<py::object> handles_;                    // pending transfers (touched with the GIL only)
};

class TorchDistCommunicator final : public comm::Communicator {
 public:
  TorchDistCommunicator(int rank, int size, std::string name, std::chrono::milliseconds timeout, py::object transport)
      : rank_(rank), size_(size), name_(std::move(name)), timeout_(timeout), shared_(std::make_shared<TorchTransport>()) {
    shared_->transport = std::move(transport);
    auto collectives = std::make_unique<TorchCheckCollectives>(shared_, rank_);
    collectives_ = collectives.get();
    check_ = std::make_unique<comm::CountCheck>(std::move(collectives), rank_, size_);
  }
  // A check whose collective is still pending in gloo (a timed-out call) may
  // still be written into: kept (leaked) then.
  ~TorchDistCommunicator() override {
    if (!Py_IsInitialized() || !check_->settled()) (void)check_.release();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  // Staging for every row that leaves this rank (sized by rows: the tiling does not matter here).
  std::size_t workspace_bytes(const Plan& plan, const comm::Tiling&) const override {
    return static_cast<std::size_t>(plan.rows_in() - plan.rows_to(rank_)) * static_cast<std::size_t>(plan.exchange_width()) *
           element_size(plan.desc().dtype);
  }

  std::unique_ptr<comm::Exchange> meet(const comm::CallInfo& mine, std::span<std::byte> workspace) override {
    if (shared_->broken.load(std::memory_order_acquire))
      throw Error(Errc::group_broken, "group", "group: " + shared_->broken_reason + "; the group is broken, recreate it");
    // The count check every transport without shared memory runs (src/comm/count_check.hpp):
    // the same verdict and message on every rank, before anything moves.
    check_->start(mine);
    wait_for_check();
    return std::make_unique<TorchDistExchange>(shared_, rank_, size_, mine, workspace, timeout_);
  }

 private:
  // Drives the check on this thread until it passed (throws its refusal),
  // at most the group's timeout (then the collective in flight failed).
  void wait_for_check() {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (int spins = 0; !check_->advance(); ++spins) {
      if (std::chrono::steady_clock::now() > deadline)
        shared_->fail(rank_, collectives_->what(),
                      "no progress within " + std::to_string(timeout_.count()) + " ms (GMMAV_TIMEOUT_MS)");
      if (spins < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }

  const int rank_, size_;
  const std::string name_;
  const std::chrono::milliseconds timeout_;
  std::shared_ptr<TorchTransport> shared_;
  TorchCheckCollectives* collectives_ = nullptr;  // check_'s
  std::unique_ptr<comm::CountCheck> check_;
};

}  // namespace

std::shared_ptr<comm::Communicator> create_torch_dist(int rank, int size, std::string name, std::chrono::milliseconds timeout,
                                                      py::object transport) {
  return std::make_shared<TorchDistCommunicator>(rank, size, std::move(name), timeout, std::move(transport));
}

}  // namespace gmmav::python
