// The two phases shared by every aclnn entry point of the two MoE operators
// (combine: aclnnGroupedMatMulAlltoAllv[V2], dispatch: aclnnAlltoAllvGroupedMatMul[V2]).
// Phase 1 checks what only the C interface can get wrong (null pointers, the
// group string, the commMode of V2, element types, formats, ranks), resolves
// the group to this rank's Comm and lets gmmav::Plan apply every other rule;
// phase 2 queues gmmav::run on the stream. The entry points only name their
// parameters and pick the operator's rules.
#pragma once

#include <cstdint>

#include "aclnn/aclnn_base.h"
#include "gmmav/plan.hpp"

namespace gmmav::aclnn {

/// What differs between the entry points of one operator.
struct EntryPoint {
  Op op;
  const char* prepare;  ///< the phase-1 function's name (in messages)
  const char* run;      ///< the phase-2 function's name
  const char* y_param;  ///< the routed output's parameter name: "y" (combine) or "gmmY" (dispatch)
};

/// Phase 1's arguments, as the vendor's prototypes pass them.
struct PrepareArgs {
  /// The parameters every entry point has, in the vendor's order (y: the routed output).
  PrepareArgs(const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
              const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional, const aclTensor* mmWeightOptional,
              const char* group, std::int64_t epWorldSize, const aclIntArray* sendCounts, const aclIntArray* recvCounts,
              bool transGmmWeight, bool transMmWeight, aclTensor* y, aclTensor* mmYOptional, std::uint64_t* workspaceSize,
              aclOpExecutor** executor)
      : gmm_x(gmmX),
        gmm_weight(gmmWeight),
        send_counts_tensor(sendCountsTensorOptional),
        recv_counts_tensor(recvCountsTensorOptional),
        mm_x(mmXOptional),
        mm_weight(mmWeightOptional),
        group(group),
        ep_world_size(epWorldSize),
        send_counts(sendCounts),
        recv_counts(recvCounts),
        trans_gmm_weight(transGmmWeight),
        trans_mm_weight(transMmWeight),
        y(y),
        mm_y(mmYOptional),
        workspace_size(workspaceSize),
        executor(executor) {}

  const aclTensor* gmm_x;
  const aclTensor* gmm_weight;
  const aclTensor* send_counts_tensor;
  const aclTensor* recv_counts_tensor;
  const aclTensor* mm_x;
  const aclTensor* mm_weight;
  const char* group;
  std::int64_t ep_world_size;
  const aclIntArray* send_counts;
  const aclIntArray* recv_counts;
  bool trans_gmm_weight;
  bool trans_mm_weight;
  aclTensor* y;
  aclTensor* mm_y;
  std::uint64_t* workspace_size;
  aclOpExecutor** executor;
  /// V2 only: whether the call has a commMode parameter, and its value.
  bool has_comm_mode = false;
  const char* comm_mode = nullptr;
  /// Dispatch op only.
  bool permute_out_flag = false;
  aclTensor* permute_out = nullptr;
};

/// Phase 1: validates, plans, hands out the executor. Returns the aclnn status;
/// nothing is written through the output pointers on failure.
aclnnStatus prepare(const EntryPoint& entry, const PrepareArgs& args) noexcept;

/// Phase 2: queues the executor's call on `stream` (consumes the executor).
aclnnStatus execute(const EntryPoint& entry, void* workspace, std::uint64_t workspace_size, aclOpExecutor* executor,
                    aclrtStream stream) noexcept;

}  // namespace gmmav::aclnn
