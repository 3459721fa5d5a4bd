// Data movement of the baselines (not of the operator): the whole AlltoAllv of
// a destination-major send buffer, and the vendor's per-expert exchange
// straight out of gmmY (docs/spec.md §7). In-process it is plain copies into the peers'
// outputs; under MPI it is MPI_Alltoallv / MPI_Ialltoallv.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "gmmav/plan.hpp"

namespace gmmav::support {
class RankGroup;
}  // namespace gmmav::support

namespace gmmav::bench {

/// Which output a baseline fills (each has its own y, so outputs can be compared).
enum class Target : int { a2a = 0, sequential = 1, per_expert = 2 };
constexpr int kTargets = 3;

class BaselineTransport {
 public:
  virtual ~BaselineTransport() = default;
  /// AlltoAllv of this rank's send buffer (destination-major: concat_d concat_j
  /// block(j, d)) into every peer's `t` output. Returns when this rank's own
  /// output is complete, as a blocking collective does.
  virtual void alltoallv(const std::byte* send_buf, Target t) = 0;
  /// Starts expert j's exchange straight from gmmY (per-destination offsets).
  /// In-process: appends one copy task per destination to `tasks` (they run on
  /// the pool beside the next expert's tiles); MPI: posts MPI_Ialltoallv.
  virtual void start_expert(int j, const std::byte* gmm_y, Target t, std::vector<std::function<void()>>& tasks) = 0;
  /// Drives the started exchanges (MPI's progress is weak). Never blocks.
  virtual void poll() {}
  virtual bool needs_poll() const { return false; }
  /// Waits for every started exchange; this rank's output is complete after it.
  virtual void finish_experts() = 0;
};

/// Every rank's plan and outputs, shared by the rank threads of one in-process case.
struct InProcessPeers {
  std::vector<const Plan*> plans;                   // [rank]
  std::array<std::vector<std::byte*>, kTargets> y;  // [target][rank]
};

std::unique_ptr<BaselineTransport> make_in_process_transport(const InProcessPeers& peers, int rank, support::RankGroup& group);
/// `group` is an MPI rank group (support::MpiRankGroup). Only in a build with MPI
/// (GMMAV_WITH_MPI; mpi_transport.cpp): call it under `if constexpr (with_mpi)`.
std::unique_ptr<BaselineTransport> make_mpi_transport(const Plan& plan, support::RankGroup& group,
                                                      const std::array<std::byte*, kTargets>& y);

}  // namespace gmmav::bench
