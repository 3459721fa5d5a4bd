// The MPI backend: one rank per process, on one machine or many.
//
// meet: two non-blocking allgathers (a fixed header, then the count lists)
// with a deadline, the shared contract check, then receives are posted for
// every incoming row tile straight into y (the unpermute is only offsets).
// Tiles for remote ranks are computed into staging memory (the workspace) and
// sent as soon as each is written; tiles for this rank go straight into y.
// MPI's progress is weak, so the orchestrating thread polls (starts queued
// sends, tests requests) while the pool computes.
#include "comm/mpi_communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>
#include <thread>

#include "comm/mpi_runtime.hpp"
#include "common/fail.hpp"
#include "engine/tile_schedule.hpp"

namespace gmmav::comm {
namespace {

using engine::kTileRows;

std::int64_t tiles_of(std::int64_t rows) { return (rows + kTileRows - 1) / kTileRows; }

struct PendingSend {
  int dest;
  int tag;
  const void* data;
  std::int64_t rows;
};

class MpiExchange final : public Exchange {
 public:
  MpiExchange(MPI_Comm comm, int rank, int size, const CallInfo& mine, std::byte* staging, std::int64_t tag_stride,
              std::chrono::milliseconds timeout, bool* broken)
      : comm_(comm), me_(rank), W_(size), e_(mine.local_experts), tag_stride_(tag_stride), timeout_(timeout), broken_(broken) {
    row_bytes_ = mine.n1 * static_cast<std::int64_t>(element_size(mine.dtype));
    y_ = static_cast<std::byte*>(mine.y);
    staging_ = staging;
    recv_offset_.resize(mine.recv_counts.size());
    std::int64_t row = 0;
    for (std::size_t g = 0; g < mine.recv_counts.size(); ++g) {
      recv_offset_[g] = row;
      row += mine.recv_counts[g];
    }
    send_offset_.resize(static_cast<std::size_t>(e_ * W_));
    row = 0;  // staging rows in gmmY order, skipping blocks that stay on this rank
    for (int j = 0; j < e_; ++j)
      for (int d = 0; d < W_; ++d) {
        send_offset_[static_cast<std::size_t>(j * W_ + d)] = row;
        if (d != me_) row += mine.send_counts[static_cast<std::size_t>(d * e_ + j)];
      }
    {
      auto lk = mpi::lock();
      mpi::check(MPI_Type_contiguous(static_cast<int>(row_bytes_), MPI_BYTE, &row_type_), "MPI_Type_contiguous");
      mpi::check(MPI_Type_commit(&row_type_), "MPI_Type_commit");
      // Every incoming tile lands directly at its final place in y.
      for (int s = 0; s < W_; ++s) {
        if (s == me_) continue;
        for (int j = 0; j < e_; ++j) {
          const std::int64_t rows = mine.recv_counts[static_cast<std::size_t>(s * e_ + j)];
          for (std::int64_t t = 0; t < tiles_of(rows); ++t) {
            const std::int64_t first = t * kTileRows;
            MPI_Request req;
            mpi::check(MPI_Irecv(y_ + (recv_offset_[static_cast<std::size_t>(s * e_ + j)] + first) * row_bytes_,
                                 static_cast<int>(std::min(kTileRows, rows - first)), row_type_, s, tag(j, first), comm_, &req),
                       "MPI_Irecv");
            requests_.push_back(req);
          }
        }
      }
    }
    last_progress_ = std::chrono::steady_clock::now();
  }

  ~MpiExchange() override {
    auto lk = mpi::lock();
    if (row_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&row_type_);
  }

  void* rows_for(int dest, int j, std::int64_t first, std::int64_t) override {
    if (dest == me_) return y_ + (recv_offset_[static_cast<std::size_t>(me_ * e_ + j)] + first) * row_bytes_;
    return staging_ + (send_offset_[static_cast<std::size_t>(j * W_ + dest)] + first) * row_bytes_;
  }

  void rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) override {
    if (dest == me_) return;
    std::lock_guard lk(queue_mu_);
    queue_.push_back({dest, tag(j, first), where, rows});
  }

  void progress() noexcept override {}
  bool needs_poll() const override { return true; }

  void poll() override {
    std::vector<PendingSend> sends;
    {
      std::lock_guard lk(queue_mu_);
      sends.swap(queue_);
    }
    auto lk = mpi::lock();
    for (const PendingSend& s : sends) {
      MPI_Request req;
      mpi::check(MPI_Isend(s.data, static_cast<int>(s.rows), row_type_, s.dest, s.tag, comm_, &req), "MPI_Isend");
      requests_.push_back(req);
    }
    if (requests_.empty()) return;
    int done = 0;
    indices_.resize(requests_.size());
    mpi::check(MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &done, indices_.data(), MPI_STATUSES_IGNORE),
               "MPI_Testsome");
    if (done > 0 && done != MPI_UNDEFINED) {
      last_progress_ = std::chrono::steady_clock::now();
      requests_.erase(std::remove(requests_.begin(), requests_.end(), MPI_REQUEST_NULL), requests_.end());
    }
  }

  void finish() override {
    for (int spins = 0;; ++spins) {
      poll();
      {
        std::lock_guard lk(queue_mu_);
        if (requests_.empty() && queue_.empty()) return;
      }
      if (std::chrono::steady_clock::now() - last_progress_ > timeout_) {
        *broken_ = true;
        fail(Errc::timeout, "group",
             "rank {} timed out after {} ms without progress waiting for {} transfers to finish (a peer died or stopped); "
             "the group is broken, recreate it",
             me_, timeout_.count(), requests_.size());
      }
      if (spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  void abort(const std::string&) noexcept override {
    // Peers waiting for this rank's rows will time out; the group cannot be reused.
    *broken_ = true;
  }

 private:
  int tag(int j, std::int64_t first) const { return static_cast<int>(j * tag_stride_ + first / kTileRows); }

  MPI_Comm comm_;
  int me_, W_, e_;
  std::int64_t tag_stride_;
  std::chrono::milliseconds timeout_;
  bool* broken_;
  std::int64_t row_bytes_ = 0;
  std::byte* y_ = nullptr;
  std::byte* staging_ = nullptr;
  std::vector<std::int64_t> recv_offset_;  // [s*e + j] rows into y
  std::vector<std::int64_t> send_offset_;  // [j*W + d] rows into staging
  MPI_Datatype row_type_ = MPI_DATATYPE_NULL;
  std::vector<MPI_Request> requests_;
  std::vector<int> indices_;
  std::mutex queue_mu_;
  std::vector<PendingSend> queue_;
  std::chrono::steady_clock::time_point last_progress_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::chrono::milliseconds timeout, std::string name)
      : comm_(comm), timeout_(timeout), name_(std::move(name)) {
    auto lk = mpi::lock();
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    int* ub = nullptr;
    int flag = 0;
    MPI_Comm_get_attr(comm_, MPI_TAG_UB, &ub, &flag);
    tag_ub_ = flag && ub ? *ub : 32767;
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && !broken_) {
      auto lk = mpi::lock();
      MPI_Comm_free(&comm_);
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  std::size_t workspace_bytes(const Plan& plan) const override {
    const std::int64_t remote_rows = plan.rows_in() - plan.rows_to(plan.rank());
    return static_cast<std::size_t>(remote_rows * plan.desc().n1) * element_size(plan.desc().dtype);
  }

  std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte> workspace) override {
    if (broken_)
      fail(Errc::group_broken, "group", "an earlier call on this MPI group failed or timed out; the group is broken, recreate it");
    const int W = size_;
    // 1. Headers: e, dtype, n1, list lengths.
    std::int64_t header[4] = {mine.local_experts, static_cast<std::int64_t>(mine.dtype), mine.n1,
                              static_cast<std::int64_t>(mine.send_counts.size())};
    std::vector<std::int64_t> headers(static_cast<std::size_t>(4 * W));
    gather(header, 4, headers.data(), "the start of the call (a rank did not call, or died)");
    std::vector<CallInfo> all(static_cast<std::size_t>(W));
    bool same_shape = true;
    for (int r = 0; r < W; ++r) {
      CallInfo& c = all[static_cast<std::size_t>(r)];
      c.local_experts = static_cast<int>(headers[static_cast<std::size_t>(4 * r)]);
      c.dtype = static_cast<DType>(headers[static_cast<std::size_t>(4 * r + 1)]);
      c.n1 = headers[static_cast<std::size_t>(4 * r + 2)];
      same_shape = same_shape && headers[static_cast<std::size_t>(4 * r)] == header[0] &&
                   headers[static_cast<std::size_t>(4 * r + 3)] == header[3];
    }
    if (!same_shape) check_contract(all);  // names the disagreement on every rank (lists left empty)
    // 2. The count lists (same length everywhere now).
    const std::size_t n = mine.send_counts.size();
    std::vector<std::int64_t> mine_counts(mine.send_counts);
    mine_counts.insert(mine_counts.end(), mine.recv_counts.begin(), mine.recv_counts.end());
    std::vector<std::int64_t> counts(2 * n * static_cast<std::size_t>(W));
    gather(mine_counts.data(), static_cast<int>(2 * n), counts.data(), "the count exchange");
    std::int64_t max_tiles = 1;
    for (int r = 0; r < W; ++r) {
      CallInfo& c = all[static_cast<std::size_t>(r)];
      const auto* base = counts.data() + 2 * n * static_cast<std::size_t>(r);
      c.send_counts.assign(base, base + n);
      c.recv_counts.assign(base + n, base + 2 * n);
      for (auto v : c.send_counts) max_tiles = std::max(max_tiles, tiles_of(v));
    }
    check_contract(all);  // same data everywhere, so the same verdict everywhere
    if (static_cast<std::int64_t>(mine.local_experts) * max_tiles > tag_ub_)
      fail(Errc::invalid_argument, "sendCounts", "expected at most {} row tiles per call for MPI tags, got {} experts x {} tiles",
           tag_ub_, mine.local_experts, max_tiles);
    std::int64_t remote_rows = 0;
    for (int d = 0; d < W; ++d)
      if (d != rank_)
        for (int j = 0; j < mine.local_experts; ++j) remote_rows += mine.send_counts[static_cast<std::size_t>(d * mine.local_experts + j)];
    const std::size_t need = static_cast<std::size_t>(remote_rows * mine.n1) * element_size(mine.dtype);
    if (workspace.size() < need)
      fail(Errc::invalid_argument, "workspaceSize", "expected at least {} bytes of workspace, got {}", need, workspace.size());
    return std::make_unique<MpiExchange>(comm_, rank_, W, mine, workspace.data(), max_tiles, timeout_, &broken_);
  }

 private:
  void gather(const std::int64_t* mine, int n, std::int64_t* all, const char* what) {
    MPI_Request req;
    {
      auto lk = mpi::lock();
      mpi::check(MPI_Iallgather(mine, n, MPI_INT64_T, all, n, MPI_INT64_T, comm_, &req), "MPI_Iallgather");
    }
    try {
      mpi::wait(&req, timeout_, std::string("at ") + what + "; the group is broken, recreate it");
    } catch (...) {
      broken_ = true;
      throw;
    }
  }

  MPI_Comm comm_;
  std::chrono::milliseconds timeout_;
  std::string name_;
  int rank_ = 0, size_ = 1;
  int tag_ub_ = 32767;
  bool broken_ = false;
};

}  // namespace

std::shared_ptr<Communicator> create_mpi(MPI_Comm user_comm, std::chrono::milliseconds timeout, const std::string& name) {
  mpi::ensure_initialized();
  MPI_Comm dup;
  {
    auto lk = mpi::lock();
    mpi::check(MPI_Comm_dup(user_comm, &dup), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  }
  return std::make_shared<MpiCommunicator>(dup, timeout, name.empty() ? std::string("gmmav-mpi") : name);
}

}  // namespace gmmav::comm
