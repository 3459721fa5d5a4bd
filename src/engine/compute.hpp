// The engine's compute step, exposed for the benchmarks: every routed tile and
// shared-expert tile of one rank's call, on the process-wide pool, written
// where `ex` says (a real backend's Exchange, or a bench's local one).
#pragma once

#include "comm/communicator.hpp"
#include "gmmav/plan.hpp"

namespace gmmav::engine {

void compute_tiles(const Plan& plan, const OpTensors& t, comm::Exchange& ex);

}  // namespace gmmav::engine
