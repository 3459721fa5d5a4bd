// gmmav native C++ API — umbrella header.
//
//   auto comms = gmmav::create_in_process_group(W);            // W ranks, threads of this process
//   // on rank r's thread:
//   auto plan = gmmav::Plan::create(desc);                      // validate + layout, reusable
//   gmmav::run(plan, comms[r], tensors);                        // collective: every rank calls it
//
// The dispatch op (the MoE layer's first half) is the same call with
// desc.op = gmmav::Op::dispatch (docs/dispatch-op.md).
//
// With weights packed once (gmmav/packed_weights.hpp):
//   auto packed = gmmav::PackedWeights::create(plan, tensors);  // while the weights stay the same
//   gmmav::run(plan, comms[r], tensors, packed);                // no weight packing inside the call
//
// Errors are thrown as gmmav::Error (code, parameter name, message).
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

#include "gmmav/build_options.hpp"
#include "gmmav/comm.hpp"
#include "gmmav/export.hpp"
#include "gmmav/packed_weights.hpp"
#include "gmmav/plan.hpp"
#include "gmmav/types.hpp"

namespace gmmav {

/// Bytes of workspace `run` needs for this plan on this communicator's backend
/// (combine op: 0 for the in-process backend, results are written straight
/// into peers' y; dispatch op without permuteOut: also room for the received
/// rows, A x H1).
GMMAV_API std::size_t workspace_size(const Plan& plan, const Comm& comm);

/// Runs the plan's operator for this rank. Combine (docs/spec.md): routed
/// GroupedMatMul -> Unpermute -> AlltoAllv into `t.y`. Dispatch
/// (docs/dispatch-op.md): AlltoAllv -> Permute (into `t.permute_out` if
/// given) -> GroupedMatMul into `t.y` (gmmY). Both: the shared-expert MatMul
/// into `t.mm_y` if given.
/// Collective over `comm`'s group: every rank calls it with its own plan.
/// Nothing is written when validation or the cross-rank count check fails.
GMMAV_API void run(const Plan& plan, const Comm& comm, const OpTensors& t, std::span<std::byte> workspace = {});

namespace detail {
GMMAV_API void run_packed(const Plan& plan, const Comm& comm, const OpTensors& t, const PackedWeights& packed,
                          std::span<std::byte> workspace);
}

/// As above, with the weights packed by PackedWeights::create instead of
/// packing them in the call; the results are bit-identical. `packed` must
/// come from the very weight tensors of `t` (same pointers, dtype and shapes)
/// whose memory has not changed since create(); a mismatch or an empty
/// object throws Error{invalid_argument, "packedWeights"} before anything is
/// written. (A template only so that `run(plan, comm, t, {})` still means
/// "no workspace"; it accepts exactly a PackedWeights.)
template <std::same_as<PackedWeights> P>
void run(const Plan& plan, const Comm& comm, const OpTensors& t, const P& packed, std::span<std::byte> workspace = {}) {
  detail::run_packed(plan, comm, t, packed, workspace);
}

/// Number of threads of the process-wide compute pool (default: GMMAV_NUM_THREADS,
/// else the cores available). Results are bit-identical for any value.
GMMAV_API int compute_threads();
GMMAV_API void set_compute_threads(int n);

}  // namespace gmmav
