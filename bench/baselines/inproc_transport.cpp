// In-process baseline transport: each rank pushes its rows into the peers'
// outputs with memcpy (the "plain parallel copy" of an AlltoAllv between
// threads), then a barrier says every rank's output is complete.
#include <cstring>

#include "baseline_transport.hpp"
#include "rank_group.hpp"

namespace gmmav::bench {
namespace {

class InProcessTransport final : public BaselineTransport {
 public:
  InProcessTransport(const InProcessPeers& peers, int rank, support::RankGroup& group)
      : peers_(peers),
        rank_(rank),
        group_(group),
        plan_(*peers.plans[static_cast<std::size_t>(rank)]),
        row_bytes_(plan_.desc().n1 * 2) {}

  void alltoallv(const std::byte* send_buf, Target t) override {
    const int W = plan_.world_size();
    std::vector<std::int64_t> first(static_cast<std::size_t>(W) + 1, 0);  // send buffer row of each destination
    for (int d = 0; d < W; ++d) first[static_cast<std::size_t>(d) + 1] = first[static_cast<std::size_t>(d)] + plan_.rows_to(d);
    for (int i = 1; i <= W; ++i) {  // rotated, like the engine: ranks do not all hit the same peer first
      const int d = (rank_ + i) % W;
      const std::int64_t rows = plan_.rows_to(d);
      if (rows == 0) continue;
      std::memcpy(dest(t, d, 0), send_buf + first[static_cast<std::size_t>(d)] * row_bytes_,
                  static_cast<std::size_t>(rows * row_bytes_));
    }
    group_.barrier();
  }

  void start_expert(int j, const std::byte* gmm_y, Target t, std::vector<std::function<void()>>& tasks) override {
    const int W = plan_.world_size();
    for (int i = 1; i <= W; ++i) {
      const int d = (rank_ + i) % W;
      const std::int64_t rows = plan_.send_block_rows(j, d);
      if (rows == 0) continue;
      std::byte* to = dest(t, d, j);
      const std::byte* from = gmm_y + plan_.send_block_offset(j, d) * row_bytes_;
      const std::size_t bytes = static_cast<std::size_t>(rows * row_bytes_);
      tasks.emplace_back([to, from, bytes] { std::memcpy(to, from, bytes); });
    }
  }

  void finish_experts() override { group_.barrier(); }

 private:
  // First row of block (this rank's expert j) in rank d's output.
  std::byte* dest(Target t, int d, int j) const {
    const Plan& pd = *peers_.plans[static_cast<std::size_t>(d)];
    return peers_.y[static_cast<std::size_t>(t)][static_cast<std::size_t>(d)] + pd.recv_block_offset(rank_, j) * row_bytes_;
  }
  const InProcessPeers& peers_;
  int rank_;
  support::RankGroup& group_;
  const Plan& plan_;
  std::int64_t row_bytes_;
};

}  // namespace

std::unique_ptr<BaselineTransport> make_in_process_transport(const InProcessPeers& peers, int rank, support::RankGroup& group) {
  return std::make_unique<InProcessTransport>(peers, rank, group);
}

}  // namespace gmmav::bench
