// aclnnAlltoAllvGroupedMatMul[V2] (the dispatch op, docs/dispatch-op.md): the
// vendor's two-phase entry points as a skin over the native API. The phases
// are shared with the combine op (two_phase.hpp); here only the parameters
// are named.
#include "aclnnop/aclnn_allto_allv_grouped_mat_mul.h"
#include "aclnnop/aclnn_allto_allv_grouped_mat_mul_v2.h"

#include "aclnn/two_phase.hpp"

namespace {

using gmmav::aclnn::EntryPoint;
using gmmav::aclnn::PrepareArgs;

constexpr EntryPoint kV1{gmmav::Op::dispatch, "aclnnAlltoAllvGroupedMatMulGetWorkspaceSize", "aclnnAlltoAllvGroupedMatMul",
                         "gmmY"};
constexpr EntryPoint kV2{gmmav::Op::dispatch, "aclnnAlltoAllvGroupedMatMulV2GetWorkspaceSize", "aclnnAlltoAllvGroupedMatMulV2",
                         "gmmY"};

// The dispatch op's parameters: the common ones and permuteOut.
PrepareArgs args(const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
                 const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional, const aclTensor* mmWeightOptional,
                 const char* group, int64_t epWorldSize, const aclIntArray* sendCounts, const aclIntArray* recvCounts,
                 bool transGmmWeight, bool transMmWeight, bool permuteOutFlag, aclTensor* gmmY, aclTensor* mmYOptional,
                 aclTensor* permuteOutOptional, uint64_t* workspaceSize, aclOpExecutor** executor) {
  PrepareArgs a(gmmX, gmmWeight, sendCountsTensorOptional, recvCountsTensorOptional, mmXOptional, mmWeightOptional, group,
                epWorldSize, sendCounts, recvCounts, transGmmWeight, transMmWeight, gmmY, mmYOptional, workspaceSize, executor);
  a.permute_out_flag = permuteOutFlag;
  a.permute_out = permuteOutOptional;
  return a;
}

}  // namespace

extern "C" {

aclnnStatus aclnnAlltoAllvGroupedMatMulGetWorkspaceSize(const aclTensor* gmmX, const aclTensor* gmmWeight,
                                                        const aclTensor* sendCountsTensorOptional,
                                                        const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional,
                                                        const aclTensor* mmWeightOptional, const char* group, int64_t epWorldSize,
                                                        const aclIntArray* sendCounts, const aclIntArray* recvCounts,
                                                        bool transGmmWeight, bool transMmWeight, bool permuteOutFlag,
                                                        aclTensor* gmmY, aclTensor* mmYOptional, aclTensor* permuteOutOptional,
                                                        uint64_t* workspaceSize, aclOpExecutor** executor) {
  return gmmav::aclnn::prepare(
      kV1, args(gmmX, gmmWeight, sendCountsTensorOptional, recvCountsTensorOptional, mmXOptional, mmWeightOptional, group,
                epWorldSize, sendCounts, recvCounts, transGmmWeight, transMmWeight, permuteOutFlag, gmmY, mmYOptional,
                permuteOutOptional, workspaceSize, executor));
}

aclnnStatus aclnnAlltoAllvGroupedMatMul(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor, aclrtStream stream) {
  return gmmav::aclnn::execute(kV1, workspace, workspaceSize, executor, stream);
}

aclnnStatus aclnnAlltoAllvGroupedMatMulV2GetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional, const aclTensor* mmWeightOptional, const char* group,
    const char* commMode, int64_t epWorldSize, const aclIntArray* sendCounts, const aclIntArray* recvCounts, bool transGmmWeight,
    bool transMmWeight, bool permuteOutFlag, aclTensor* gmmY, aclTensor* mmYOptional, aclTensor* permuteOutOptional,
    uint64_t* workspaceSize, aclOpExecutor** executor) {
  PrepareArgs a = args(gmmX, gmmWeight, sendCountsTensorOptional, recvCountsTensorOptional, mmXOptional, mmWeightOptional, group,
                       epWorldSize, sendCounts, recvCounts, transGmmWeight, transMmWeight, permuteOutFlag, gmmY, mmYOptional,
                       permuteOutOptional, workspaceSize, executor);
  a.has_comm_mode = true;
  a.comm_mode = commMode;
  return gmmav::aclnn::prepare(kV2, a);
}

aclnnStatus aclnnAlltoAllvGroupedMatMulV2(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor, aclrtStream stream) {
  return gmmav::aclnn::execute(kV2, workspace, workspaceSize, executor, stream);
}

}  // extern "C"
