// The MPI backend: one rank per process, on one machine or many.
//
// meet: two non-blocking allgathers (a fixed header, then the count lists)
// with a deadline, the shared contract check, then receives are posted for
// every incoming row tile straight into y (the unpermute is only offsets).
// Tiles for remote ranks are computed into a bounded ring of tile-sized
// staging slots (the workspace: about a quarter of the send volume for large
// calls, never the whole gmmY) and sent as soon as each is written; a slot is
// reused once its send completed. Tiles for this rank go straight into y.
// MPI's progress is weak, so someone must call MPI while the pool computes.
// With MPI_THREAD_SERIALIZED or better the pool worker that finished a tile
// does it, at that tile boundary: it starts the tile's send and tests the
// call's requests (one non-blocking pass), so no other thread wakes up and
// takes a core from the GEMMs (docs/performance.md, "MPI progress"). Under
// MPI_THREAD_FUNNELED only the orchestrating thread may call MPI: it polls
// while the pool computes, as the fallback.
#include "comm/mpi_communicator.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <condition_variable>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "comm/mpi_runtime.hpp"
#include "common/fail.hpp"
#include "engine/compute_pool.hpp"
#include "engine/tile_schedule.hpp"

namespace gmmav::comm {
namespace {

using engine::kTileRows;

std::int64_t tiles_of(std::int64_t rows) { return (rows + kTileRows - 1) / kTileRows; }

// GMMAV_MPI_PROGRESS=0: nobody drives MPI while the pool computes (sends start
// when the staging ring is full, and in finish) — the "without progress" half
// of an overlap measurement.
bool progress_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("GMMAV_MPI_PROGRESS");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

struct PendingSend {
  int dest;
  int tag;
  const void* data;
  std::int64_t rows;
  int slot;
};

// Staging slots for a call: enough for every pool worker to hold one while
// sends are in flight, at most a quarter of the remote volume (or all of it
// when that is smaller than the minimum).
std::int64_t staging_slots(std::int64_t remote_rows, std::int64_t row_bytes) {
  const std::int64_t remote_tiles = (remote_rows + kTileRows - 1) / kTileRows;
  const std::int64_t quarter = remote_rows * row_bytes / 4 / (kTileRows * row_bytes);
  const std::int64_t minimum = 4 * engine::ComputePool::instance().threads();
  return std::min(remote_tiles, std::max(minimum, quarter));
}

// 128 bits identifying a rank's count lists (two independent 64-bit mixes:
// a false "unchanged" needs both to collide, ~2^-128).
struct Digest {
  std::uint64_t a = 0, b = 0;
};

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 29;
  return h;
}

Digest digest_of(const std::vector<std::int64_t>& send, const std::vector<std::int64_t>& recv) {
  Digest d{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
  std::uint64_t i = 0;
  for (const auto* list : {&send, &recv}) {
    for (std::int64_t v : *list) {
      d.a = mix(d.a, static_cast<std::uint64_t>(v) ^ (i << 40));
      d.b = mix(d.b ^ 0x94d049bb133111ebULL, static_cast<std::uint64_t>(v) * 0xd6e8feb86659fd93ULL + i);
      ++i;
    }
    d.a = mix(d.a, i);
    d.b = mix(d.b, ~i);
  }
  return d;
}

class MpiExchange final : public Exchange {
 public:
  MpiExchange(MPI_Comm comm, int rank, int size, const CallInfo& mine, std::byte* staging, std::int64_t staging_slots,
              std::int64_t tag_stride, std::chrono::milliseconds timeout, bool* broken)
      : comm_(comm), me_(rank), W_(size), e_(mine.local_experts), tag_stride_(tag_stride), timeout_(timeout), broken_(broken) {
    row_bytes_ = mine.n1 * static_cast<std::int64_t>(element_size(mine.dtype));
    y_ = static_cast<std::byte*>(mine.y);
    staging_ = staging;
    for (std::int64_t i = staging_slots; i-- > 0;) free_slots_.push_back(static_cast<int>(i));
    recv_offset_.resize(mine.recv_counts.size());
    std::int64_t row = 0;
    for (std::size_t g = 0; g < mine.recv_counts.size(); ++g) {
      recv_offset_[g] = row;
      row += mine.recv_counts[g];
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
            slot_of_.push_back(-1);
          }
        }
      }
    }
    workers_drive_ = mpi::thread_level_at_least_serialized();
    last_progress_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  }

  ~MpiExchange() override {
    auto lk = mpi::lock();
    if (row_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&row_type_);
  }

  // Called by pool workers: a slot of the ring. When all are in use the
  // worker drives MPI itself until a send completes (or, under FUNNELED,
  // waits for the orchestrating thread's polling to free one).
  void* rows_for(int dest, int j, std::int64_t first, std::int64_t) override {
    if (dest == me_) return y_ + (recv_offset_[static_cast<std::size_t>(me_ * e_ + j)] + first) * row_bytes_;
    std::unique_lock lk(queue_mu_);
    ++waiting_for_slot_;
    if (!workers_drive_) {
      slot_freed_.wait(lk, [&] { return !free_slots_.empty() || aborted_; });
    } else {
      mpi::Backoff backoff;
      while (free_slots_.empty() && !aborted_) {
        lk.unlock();
        drive(/*wait_turn=*/true);
        const bool stuck = std::chrono::steady_clock::now() - last_progress() > timeout_;
        if (!stuck) backoff.pause();
        lk.lock();
        if (stuck && free_slots_.empty()) {
          aborted_ = true;
          *broken_ = true;
        }
      }
    }
    --waiting_for_slot_;
    if (aborted_)
      fail(Errc::timeout, "group",
           "rank {} timed out after {} ms: its sends made no progress (a peer died or stopped); the group is broken, recreate it",
           me_, timeout_.count());
    const int slot = free_slots_.back();
    free_slots_.pop_back();
    return staging_ + static_cast<std::int64_t>(slot) * kTileRows * row_bytes_;
  }

  // A tile is written: queue its send and, at this tile boundary, drive MPI.
  void rows_done(int dest, int j, std::int64_t first, std::int64_t rows, void* where) override {
    if (dest != me_) {
      const int slot = static_cast<int>((static_cast<std::byte*>(where) - staging_) / (kTileRows * row_bytes_));
      std::lock_guard lk(queue_mu_);
      queue_.push_back({dest, tag(j, first), where, rows, slot});
    }
    if (workers_drive_ && progress_enabled()) drive(/*wait_turn=*/false);
  }

  // A shared-expert tile finished: a tile boundary like any other.
  void progress() noexcept override {
    if (!workers_drive_ || !progress_enabled()) return;
    try {
      drive(/*wait_turn=*/false);
    } catch (...) {  // an MPI failure: finish() reports it
      std::lock_guard lk(queue_mu_);
      if (!worker_error_) worker_error_ = std::current_exception();
    }
  }

  // FUNNELED: only the orchestrating thread may call MPI, so it must poll
  // (GMMAV_MPI_PROGRESS=0 is ignored there: nobody else could free a slot).
  bool needs_poll() const override { return !workers_drive_; }

  void poll() override { drive(/*wait_turn=*/true); }

  // One non-blocking pass: start queued sends, test every request, free the
  // slots of completed sends. One thread at a time; a worker that finds
  // another one driving goes back to its GEMMs (wait_turn=false).
  void drive(bool wait_turn) {
    std::unique_lock one(poll_mu_, std::defer_lock);
    if (wait_turn) {
      one.lock();
    } else if (!one.try_lock()) {
      return;
    }
    do {
      drive_locked();
      std::lock_guard lk(queue_mu_);
      if (queue_.empty()) break;
    } while (true);
  }

  void drive_locked() {
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
      slot_of_.push_back(s.slot);
    }
    if (requests_.empty()) return;
    // FUNNELED: workers blocked on a staging slot while nothing moves for the
    // timeout means a peer is gone. Wake them with an error (never throw from
    // here: the pool's job is still running on this thread's stack).
    if (!workers_drive_ && std::chrono::steady_clock::now() - last_progress() > timeout_) {
      bool stuck = false;
      {
        std::lock_guard q(queue_mu_);
        stuck = waiting_for_slot_ > 0;
        if (stuck) aborted_ = true;
      }
      if (stuck) {
        *broken_ = true;
        slot_freed_.notify_all();
        return;
      }
    }
    int done = 0;
    indices_.resize(requests_.size());
    mpi::check(MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &done, indices_.data(), MPI_STATUSES_IGNORE),
               "MPI_Testsome");
    if (done <= 0 || done == MPI_UNDEFINED) return;
    last_progress_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    bool freed = false;
    {
      std::lock_guard q(queue_mu_);
      for (int i = 0; i < done; ++i) {
        const int slot = slot_of_[static_cast<std::size_t>(indices_[static_cast<std::size_t>(i)])];
        if (slot >= 0) {
          free_slots_.push_back(slot);
          freed = true;
        }
      }
    }
    if (freed) slot_freed_.notify_all();
    std::size_t out = 0;
    for (std::size_t i = 0; i < requests_.size(); ++i) {
      if (requests_[i] == MPI_REQUEST_NULL) continue;
      requests_[out] = requests_[i];
      slot_of_[out] = slot_of_[i];
      ++out;
    }
    requests_.resize(out);
    slot_of_.resize(out);
  }

  void finish() override {
    mpi::Backoff backoff;
    for (;;) {
      poll();
      {
        std::lock_guard lk(queue_mu_);
        if (worker_error_) std::rethrow_exception(worker_error_);
        if (requests_.empty() && queue_.empty()) return;
      }
      if (std::chrono::steady_clock::now() - last_progress() > timeout_) {
        *broken_ = true;
        fail(Errc::timeout, "group",
             "rank {} timed out after {} ms without progress waiting for {} transfers to finish (a peer died or stopped); "
             "the group is broken, recreate it",
             me_, timeout_.count(), requests_.size());
      }
      backoff.pause();
    }
  }

  void abort(const std::string&) noexcept override {
    // Peers waiting for this rank's rows will time out; the group cannot be reused.
    *broken_ = true;
    {
      std::lock_guard lk(queue_mu_);
      aborted_ = true;
    }
    slot_freed_.notify_all();
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
  MPI_Datatype row_type_ = MPI_DATATYPE_NULL;
  std::vector<MPI_Request> requests_;  // receives and sends in flight
  std::vector<int> slot_of_;           // staging slot of each request (-1: a receive)
  std::vector<int> indices_;
  std::mutex queue_mu_;  // guards queue_, free_slots_, aborted_
  std::vector<PendingSend> queue_;
  std::vector<int> free_slots_;
  std::condition_variable slot_freed_;
  int waiting_for_slot_ = 0;  // workers blocked in rows_for
  std::mutex poll_mu_;
  bool aborted_ = false;
  bool workers_drive_ = false;  // pool workers call MPI (thread level >= SERIALIZED)
  std::exception_ptr worker_error_;  // an MPI failure inside progress() (noexcept)
  std::atomic<std::chrono::steady_clock::rep> last_progress_ns_{0};  // last completed request

  std::chrono::steady_clock::time_point last_progress() const {
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_progress_ns_.load(std::memory_order_relaxed)));
  }
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
    const std::int64_t row_bytes = plan.desc().n1 * static_cast<std::int64_t>(element_size(plan.desc().dtype));
    return static_cast<std::size_t>(staging_slots(remote_rows, row_bytes) * kTileRows * row_bytes);
  }

  std::size_t min_workspace_bytes(const Plan& plan) const override {
    const bool remote = plan.rows_in() > plan.rows_to(plan.rank());
    return remote ? static_cast<std::size_t>(kTileRows * plan.desc().n1) * element_size(plan.desc().dtype) : 0;
  }

  // One round when every rank's counts are those of the group's last good
  // call (the usual case: a model calls with the same routing shape again):
  // the headers carry a 128-bit digest of each rank's lists, and the lists
  // (already checked) are reused. Otherwise a second round gathers them.
  std::unique_ptr<Exchange> meet(const CallInfo& mine, std::span<std::byte> workspace) override {
    if (broken_)
      fail(Errc::group_broken, "group", "an earlier call on this MPI group failed or timed out; the group is broken, recreate it");
    const int W = size_;
    constexpr int kHeader = 6;
    // 1. Headers: e, dtype, n1, list length, digest of the lists.
    const Digest digest = digest_of(mine.send_counts, mine.recv_counts);
    std::int64_t header[kHeader] = {mine.local_experts, static_cast<std::int64_t>(mine.dtype), mine.n1,
                                    static_cast<std::int64_t>(mine.send_counts.size()), static_cast<std::int64_t>(digest.a),
                                    static_cast<std::int64_t>(digest.b)};
    std::vector<std::int64_t> headers(static_cast<std::size_t>(kHeader * W));
    gather(header, kHeader, headers.data(), "the start of the call (a rank did not call, or died)");
    std::vector<CallInfo> all(static_cast<std::size_t>(W));
    bool same_shape = true;
    bool as_last_call = last_lists_.size() == static_cast<std::size_t>(W);
    for (int r = 0; r < W; ++r) {
      CallInfo& c = all[static_cast<std::size_t>(r)];
      const std::int64_t* h = headers.data() + static_cast<std::size_t>(kHeader * r);
      c.local_experts = static_cast<int>(h[0]);
      c.dtype = static_cast<DType>(h[1]);
      c.n1 = h[2];
      same_shape = same_shape && h[0] == header[0] && h[3] == header[3];
      as_last_call = as_last_call && static_cast<std::uint64_t>(h[4]) == last_digest_[static_cast<std::size_t>(r)].a &&
                     static_cast<std::uint64_t>(h[5]) == last_digest_[static_cast<std::size_t>(r)].b;
    }
    if (!same_shape) check_contract(all);  // names the disagreement on every rank (lists left empty)
    const std::size_t n = mine.send_counts.size();
    if (as_last_call) {
      for (int r = 0; r < W; ++r) {
        all[static_cast<std::size_t>(r)].send_counts = last_lists_[static_cast<std::size_t>(r)].send_counts;
        all[static_cast<std::size_t>(r)].recv_counts = last_lists_[static_cast<std::size_t>(r)].recv_counts;
      }
    } else {
      // 2. The count lists (same length everywhere now).
      std::vector<std::int64_t> mine_counts(mine.send_counts);
      mine_counts.insert(mine_counts.end(), mine.recv_counts.begin(), mine.recv_counts.end());
      std::vector<std::int64_t> counts(2 * n * static_cast<std::size_t>(W));
      gather(mine_counts.data(), static_cast<int>(2 * n), counts.data(), "the count exchange");
      for (int r = 0; r < W; ++r) {
        CallInfo& c = all[static_cast<std::size_t>(r)];
        const auto* base = counts.data() + 2 * n * static_cast<std::size_t>(r);
        c.send_counts.assign(base, base + n);
        c.recv_counts.assign(base + n, base + 2 * n);
      }
    }
    std::int64_t max_tiles = 1;
    for (const CallInfo& c : all)
      for (auto v : c.send_counts) max_tiles = std::max(max_tiles, tiles_of(v));
    check_contract(all);  // same data everywhere, so the same verdict everywhere
    if (!as_last_call) {
      last_lists_.assign(static_cast<std::size_t>(W), CallInfo{});
      last_digest_.assign(static_cast<std::size_t>(W), Digest{});
      for (int r = 0; r < W; ++r) {
        const CallInfo& c = all[static_cast<std::size_t>(r)];
        last_lists_[static_cast<std::size_t>(r)].send_counts = c.send_counts;
        last_lists_[static_cast<std::size_t>(r)].recv_counts = c.recv_counts;
        const std::int64_t* h = headers.data() + static_cast<std::size_t>(kHeader * r);
        last_digest_[static_cast<std::size_t>(r)] = {static_cast<std::uint64_t>(h[4]), static_cast<std::uint64_t>(h[5])};
      }
    }
    if (static_cast<std::int64_t>(mine.local_experts) * max_tiles > tag_ub_)
      fail(Errc::invalid_argument, "sendCounts", "expected at most {} row tiles per call for MPI tags, got {} experts x {} tiles",
           tag_ub_, mine.local_experts, max_tiles);
    std::int64_t remote_rows = 0;
    for (int d = 0; d < W; ++d)
      if (d != rank_)
        for (int j = 0; j < mine.local_experts; ++j) remote_rows += mine.send_counts[static_cast<std::size_t>(d * mine.local_experts + j)];
    // Any workspace of at least one slot works; more slots keep more sends in flight.
    const std::int64_t row_bytes = mine.n1 * static_cast<std::int64_t>(element_size(mine.dtype));
    const std::int64_t slot_bytes = kTileRows * row_bytes;
    const std::int64_t slots = std::min<std::int64_t>(static_cast<std::int64_t>(workspace.size()) / slot_bytes,
                                                      (remote_rows + kTileRows - 1) / kTileRows);
    if (remote_rows > 0 && slots < 1)
      fail(Errc::invalid_argument, "workspaceSize", "expected at least {} bytes of workspace (one tile), got {}", slot_bytes,
           workspace.size());
    return std::make_unique<MpiExchange>(comm_, rank_, W, mine, workspace.data(), slots, max_tiles, timeout_, &broken_);
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
  std::vector<CallInfo> last_lists_;  // per rank: the counts of the last call that passed the check
  std::vector<Digest> last_digest_;
};

}  // namespace

std::shared_ptr<Communicator> create_mpi(MPI_Comm user_comm, std::chrono::milliseconds timeout, const std::string& name) {
  mpi::ensure_initialized();
  // One rank per process: its thread computes too instead of waiting for the
  // pool (engine/compute_pool.hpp), so nothing wakes it just to poll.
  engine::ComputePool::instance().set_caller_computes(true);
  MPI_Comm dup;
  {
    auto lk = mpi::lock();
    mpi::check(MPI_Comm_dup(user_comm, &dup), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  }
  return std::make_shared<MpiCommunicator>(dup, timeout, name.empty() ? std::string("gmmav-mpi") : name);
}

}  // namespace gmmav::comm
