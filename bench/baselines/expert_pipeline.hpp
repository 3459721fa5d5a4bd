// The baselines' GEMM loop: the engine's own combine schedule (its stages,
// tiles, routes and pool; engine::combine_schedule) with a local Exchange that
// writes every routed tile into this rank's gmmY (expert-major), and the
// baselines' data moves added between its jobs. The GEMM side is the engine's,
// not a copy of it, so the comparison is one of communication schedules only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::bench {

using Tasks = std::vector<std::function<void()>>;
/// Where the baselines move data, between the schedule's jobs.
struct PipelineHooks {
  /// After routed expert j's tiles (also, in order, for experts without rows).
  /// Tasks it appends run at the front of the next job.
  std::function<void(int j, Tasks& next_job)> after_expert;
  /// Once, after every routed expert and before the shared expert's tiles.
  std::function<void()> after_routed;
  /// Called by the calling thread while the pool computes.
  std::function<void()> idle;
};

/// Prepares (packs) every weight one call of this rank uses, one pool task per
/// weight, and drops them: the per-call weight cost the engine pays and the
/// library variant (weights packed once) does not.
void prepare_all_weights(const Plan& plan, const OpTensors& in);

/// Runs one rank's GEMMs: routed tiles into `gmm_y` (A x N1), shared tiles into `mm_y`.
/// With `packed` (PackedWeights of `in`), no weight is packed, and without an
/// after_expert hook the routed tiles run as one job and the shared expert's
/// as another (engine::Grouping::routed_then_shared); otherwise stage by stage.
void run_expert_pipeline(const Plan& plan, const OpTensors& in, std::byte* gmm_y, std::uint16_t* mm_y, const PipelineHooks& hooks,
                         const PackedWeights* packed = nullptr);

}  // namespace gmmav::bench
