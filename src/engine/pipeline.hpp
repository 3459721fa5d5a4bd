// The engine's entry points. compute_tiles (the combine op): every routed tile and shared-expert tile of one
// rank's call, on the process-wide pool, written where `ex` says. Called by
// gmmav::run (src/api/run.cpp) with the backend's Exchange after the meeting,
// and by the bench's variants with a local Exchange (bench/local_exchange.hpp).
#pragma once

#include <cstddef>

#include "comm/communicator.hpp"
#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::engine {

/// Without `packed`, every weight is converted and packed in the call (the
/// next stage's while the current one computes). With it (checked against
/// plan and t first: Error "packedWeights"), no weight is packed: each stage
/// runs its tiles on the packed weights. Same tiles, same routes, same bits.
void compute_tiles(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const PackedWeights* packed = nullptr);

/// The dispatch op (engine/dispatch_pipeline.cpp): sends every gmmX tile
/// through `ex`, computes the shared expert while the rows travel, calls
/// ex.finish(), then runs each expert's GEMM on `received` — the rows `ex`
/// delivered (permuteOut, or the receive buffer), expert-major, source-minor,
/// H1 wide — into t.y (gmmY). Packed weights as for compute_tiles.
void compute_dispatch(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const std::byte* received,
                      const PackedWeights* packed = nullptr);

}  // namespace gmmav::engine
