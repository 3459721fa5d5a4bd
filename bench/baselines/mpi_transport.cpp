// MPI baseline transport: MPI_Alltoallv of the send buffer (the sequential
// design), and one MPI_Ialltoallv per expert straight out of gmmY with
// per-destination offsets (the vendor's schedule), tested while the pool computes.
#include <mpi.h>

#include <chrono>
#include <climits>
#include <stdexcept>
#include <thread>

#include "baseline_transport.hpp"
#include "mpi_rank_group.hpp"

namespace gmmav::bench {
namespace {

int as_int(std::int64_t v) {
  if (v > INT_MAX) throw std::runtime_error("bench: an MPI count exceeds INT_MAX rows");
  return static_cast<int>(v);
}

class MpiTransport final : public BaselineTransport {
 public:
  MpiTransport(const Plan& plan, support::MpiRankGroup& group, const std::array<std::byte*, kTargets>& y)
      : plan_(plan), comm_(group.comm()), y_(y) {
    MPI_Type_contiguous(as_int(plan.desc().n1 * 2), MPI_BYTE, &row_);
    MPI_Type_commit(&row_);
  }
  ~MpiTransport() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Type_free(&row_);
  }

  void alltoallv(const std::byte* send_buf, Target t) override {
    const int W = plan_.world_size();
    std::vector<int> sc(static_cast<std::size_t>(W)), sd(sc.size()), rc(sc.size()), rd(sc.size());
    std::int64_t off = 0;
    for (int d = 0; d < W; ++d) {
      const auto i = static_cast<std::size_t>(d);
      sc[i] = as_int(plan_.rows_to(d));
      sd[i] = as_int(off);
      off += plan_.rows_to(d);
      rc[i] = as_int(plan_.rows_from(d));
      rd[i] = as_int(plan_.recv_block_offset(d, 0));
    }
    MPI_Alltoallv(send_buf, sc.data(), sd.data(), row_, y_[static_cast<std::size_t>(t)], rc.data(), rd.data(), row_, comm_);
  }

  void start_expert(int j, const std::byte* gmm_y, Target t, std::vector<std::function<void()>>&) override {
    const int W = plan_.world_size();
    Pending p;
    p.counts.resize(4 * static_cast<std::size_t>(W));
    int* sc = p.counts.data();
    int* sd = sc + W;
    int* rc = sd + W;
    int* rd = rc + W;
    for (int d = 0; d < W; ++d) {
      sc[d] = as_int(plan_.send_block_rows(j, d));
      sd[d] = as_int(plan_.send_block_offset(j, d));
      rc[d] = as_int(plan_.recv_block_rows(d, j));
      rd[d] = as_int(plan_.recv_block_offset(d, j));
    }
    MPI_Ialltoallv(gmm_y, sc, sd, row_, y_[static_cast<std::size_t>(t)], rc, rd, row_, comm_, &p.req);
    pending_.push_back(std::move(p));
  }

  bool needs_poll() const override { return true; }
  void poll() override {
    for (auto& p : pending_) {
      if (p.req == MPI_REQUEST_NULL) continue;
      int flag = 0;
      MPI_Test(&p.req, &flag, MPI_STATUS_IGNORE);
    }
  }

  void finish_experts() override {
    // Test and sleep like the engine's finish(), so a waiting rank leaves the core to ranks that compute.
    for (int spins = 0;; ++spins) {
      bool all = true;
      for (auto& p : pending_) {
        if (p.req == MPI_REQUEST_NULL) continue;
        int flag = 0;
        MPI_Test(&p.req, &flag, MPI_STATUS_IGNORE);
        all = all && flag;
      }
      if (all) break;
      if (spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    pending_.clear();
  }

 private:
  struct Pending {
    std::vector<int> counts;  // must live until the request completes
    MPI_Request req = MPI_REQUEST_NULL;
  };
  const Plan& plan_;
  MPI_Comm comm_;
  std::array<std::byte*, kTargets> y_;
  MPI_Datatype row_ = MPI_DATATYPE_NULL;
  std::vector<Pending> pending_;
};

}  // namespace

std::unique_ptr<BaselineTransport> make_mpi_transport(const Plan& plan, support::RankGroup& group,
                                                      const std::array<std::byte*, kTargets>& y) {
  return std::make_unique<MpiTransport>(plan, dynamic_cast<support::MpiRankGroup&>(group), y);
}

}  // namespace gmmav::bench
