// The baselines' GEMM loop: the engine's stages (one per non-empty expert, then
// the shared expert; the next stage's weight prepared by the first task of the
// current stage, or nothing prepared when given packed weights) with the
// engine's tiles, library and pool, but writing every routed tile into this
// rank's gmmY (expert-major) and with hooks where the baselines move data. Keeping the GEMM side identical to the engine's makes
// the comparison a comparison of communication schedules only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::bench {

using Tasks = std::vector<std::function<void()>>;

struct PipelineHooks {
  /// After routed expert j is fully computed (also called, in order, for
  /// experts without rows). Tasks it appends run at the front of the next job.
  std::function<void(int j, Tasks& next_job)> after_expert;
  /// Once, after every routed expert and before the shared expert's tiles.
  std::function<void()> after_routed;
  /// Called by the orchestrating thread while the pool computes.
  std::function<void()> idle;
};

/// Prepares (packs) every weight one call of this rank uses, one pool task per
/// weight, and drops them: the per-call weight cost the engine pays and the
/// library variant (weights packed once) does not.
void prepare_all_weights(const Plan& plan, const OpTensors& in);

/// Runs one rank's GEMMs: routed tiles into `gmm_y` (A x N1), shared tiles into `mm_y`.
/// With `packed` (PackedWeights of `in`), no weight is packed, as in engine::compute_tiles,
/// and without an after_expert hook the routed tiles run as one job and the
/// shared expert's as another (the engine runs all of them as one job).
void run_expert_pipeline(const Plan& plan, const OpTensors& in, std::byte* gmm_y, std::uint16_t* mm_y, const PipelineHooks& hooks,
                         const PackedWeights* packed = nullptr);

}  // namespace gmmav::bench
