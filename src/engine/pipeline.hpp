// The engine's entry points: one schedule builder per op (engine/schedule.hpp)
// and the runs of their schedules. compute_tiles (the combine op): every routed
// tile and shared-expert tile of one rank's call, on the process-wide pool,
// written where `ex` says. Called by gmmav::run (src/api/run.cpp) with the
// backend's Exchange after the meeting; the bench's variants build the schedule
// with a local Exchange (bench/baselines/local_exchange.hpp) and step in between its jobs.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/schedule.hpp"
#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::engine {

/// How a combine schedule groups its tiles into jobs.
enum class Grouping {
  /// One job per stage (each routed expert with rows, then the shared expert), after a job that
  /// prepares the first weight; stage s's job prepares stage s+1's weight first. The only
  /// grouping without packed weights; with them nothing is prepared. Jobs are labelled with
  /// their expert, so a caller can step in after each (the vendor's per-expert overlap).
  by_stage,
  /// Packed weights only: every tile in one job (every expert's remote tiles first, then the
  /// local ones, then the shared expert's): one hand-off to the pool and back per call.
  whole_call,
  /// Packed weights only: the routed tiles as one job, the shared expert's as a second.
  routed_then_shared,
};

/// The combine op's schedule for one rank's call: every routed tile and shared-expert tile,
/// written where `ex` says. Without `packed`, every weight is converted and packed in the call;
/// with it (checked against plan and t first: Error "packedWeights"), none is. Same tiles,
/// same routes, same bits for every grouping. The schedule refers to plan, t's memory, ex and
/// packed: they must outlive it.
Schedule combine_schedule(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const PackedWeights* packed,
                          Grouping grouping);

/// Runs the combine op's schedule: whole_call with packed weights, by_stage without.
void compute_tiles(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const PackedWeights* packed = nullptr);

/// The dispatch op's schedule (engine/dispatch_pipeline.cpp): sends every gmmX tile
/// through `ex`, computes the shared expert while the rows travel, calls
/// ex.finish(), then runs each expert's GEMM on `received` — the rows `ex`
/// delivered (permuteOut, or the receive buffer), expert-major, source-minor,
/// H1 wide — into t.y (gmmY). Packed weights as for combine_schedule.
Schedule dispatch_schedule(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const std::byte* received,
                           const PackedWeights* packed);

/// Runs dispatch_schedule.
void compute_dispatch(const Plan& plan, const OpTensors& t, comm::Exchange& ex, const std::byte* received,
                      const PackedWeights* packed = nullptr);

}  // namespace gmmav::engine
