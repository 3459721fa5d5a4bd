// gmmav native C++ API — umbrella header.
//
//   auto comms = gmmav::create_in_process_group(W);            // W ranks, threads of this process
//   // on rank r's thread:
//   auto plan = gmmav::Plan::create(desc);                      // validate + layout, reusable
//   gmmav::run(plan, comms[r], tensors);                        // collective: every rank calls it
//
// Errors are thrown as gmmav::Error (code, parameter name, message).
#pragma once

#include <cstddef>
#include <span>

#include "gmmav/comm.hpp"
#include "gmmav/plan.hpp"
#include "gmmav/types.hpp"

namespace gmmav {

/// Bytes of workspace `run` needs for this plan on this communicator's backend
/// (0 for the in-process backend: results are written straight into peers' y).
std::size_t workspace_size(const Plan& plan, const Comm& comm);

/// Runs the operator for this rank: routed GroupedMatMul -> Unpermute ->
/// AlltoAllv into `t.y`, and the shared-expert MatMul into `t.mm_y` if given.
/// Collective over `comm`'s group: every rank calls it with its own plan.
/// Nothing is written when validation or the cross-rank count check fails.
void run(const Plan& plan, const Comm& comm, const OpTensors& t, std::span<std::byte> workspace = {});

/// Number of threads of the process-wide compute pool (default: GMMAV_NUM_THREADS,
/// else the cores available). Results are bit-identical for any value.
int compute_threads();
void set_compute_threads(int n);

}  // namespace gmmav
