// The engine's entry points. compute_tiles (the combine op): every routed tile and shared-expert tile of one
// rank's call, on the process-wide pool, written where `ex` says. Called by
// gmmav::run (src/api/run.cpp) with the backend's Exchange after the meeting,
// and by the bench's variants with a local Exchange (bench/local_exchange.hpp).
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "comm/communicator.hpp"
#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::engine {

/// Where a caller other than gmmav::run steps into compute_tiles' stage loop:
/// the bench's baselines (the sequential design, the vendor's per-expert
/// overlap) run the engine's own stages, tiles and routes with a local
/// Exchange and move data at these points instead (bench/expert_pipeline.cpp).
struct StageHooks {
  /// After routed expert j's tiles (also, in order, for experts without rows).
  /// Tasks it appends run at the front of the next job.
  std::function<void(int j, std::vector<std::function<void()>>& next_job)> after_expert;
  /// Once, after every routed expert and before the shared expert's tiles.
  std::function<void()> after_routed;
  /// Called by the orchestrating thread while the pool computes.
  std::function<void()> idle;
};

/// Without `packed`, every weight is converted and packed in the call (the
/// next stage's while the current one computes). With it (checked against
/// plan and t first: Error "packedWeights"), no weight is packed: each stage
/// runs its tiles on the packed weights. Same tiles, same routes, same bits.
/// With `hooks`, the stages run one job each (with packed weights and no
/// after_expert: the routed tiles as one job, after_routed, the shared expert's).
void compute_tiles(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const PackedWeights* packed = nullptr,
                   const StageHooks* hooks = nullptr);

/// The dispatch op (engine/dispatch_pipeline.cpp): sends every gmmX tile
/// through `ex`, computes the shared expert while the rows travel, calls
/// ex.finish(), then runs each expert's GEMM on `received` — the rows `ex`
/// delivered (permuteOut, or the receive buffer), expert-major, source-minor,
/// H1 wide — into t.y (gmmY). Packed weights as for compute_tiles.
void compute_dispatch(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const std::byte* received,
                      const PackedWeights* packed = nullptr);

}  // namespace gmmav::engine
