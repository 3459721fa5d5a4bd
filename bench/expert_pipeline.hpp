// The baselines' GEMM loop: engine::compute_tiles itself (its stages, tiles,
// routes and pool) with a local Exchange that writes every routed tile into
// this rank's gmmY (expert-major), and engine::StageHooks where the baselines
// move data. The GEMM side is the engine's, not a copy of it, so the
// comparison is one of communication schedules only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/pipeline.hpp"
#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::bench {

using Tasks = std::vector<std::function<void()>>;
/// Where the baselines move data: after each routed expert, after all of
/// them, and while the pool computes (the engine's own hook points).
using PipelineHooks = engine::StageHooks;

/// Prepares (packs) every weight one call of this rank uses, one pool task per
/// weight, and drops them: the per-call weight cost the engine pays and the
/// library variant (weights packed once) does not.
void prepare_all_weights(const Plan& plan, const OpTensors& in);

/// Runs one rank's GEMMs: routed tiles into `gmm_y` (A x N1), shared tiles into `mm_y`.
/// With `packed` (PackedWeights of `in`), no weight is packed, and without an
/// after_expert hook the routed tiles run as one job and the shared expert's
/// as another (engine::compute_tiles with hooks).
void run_expert_pipeline(const Plan& plan, const OpTensors& in, std::byte* gmm_y, std::uint16_t* mm_y, const PipelineHooks& hooks,
                         const PackedWeights* packed = nullptr);

}  // namespace gmmav::bench
