// aclnnGroupedMatMulAlltoAllv[V2] (the combine op, docs/spec.md): the vendor's
// two-phase entry points as a skin over the native API. The phases are shared
// with the dispatch op (two_phase.hpp); here only the parameters are named.
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv_v2.h"

#include "aclnn/two_phase.hpp"

namespace {

using gmmav::aclnn::EntryPoint;
using gmmav::aclnn::PrepareArgs;

constexpr EntryPoint kV1{gmmav::Op::combine, "aclnnGroupedMatMulAlltoAllvGetWorkspaceSize", "aclnnGroupedMatMulAlltoAllv", "y"};
constexpr EntryPoint kV2{gmmav::Op::combine, "aclnnGroupedMatMulAlltoAllvV2GetWorkspaceSize", "aclnnGroupedMatMulAlltoAllvV2",
                         "y"};

}  // namespace

extern "C" {

aclnnStatus aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional, const aclTensor* mmWeightOptional, const char* group,
    int64_t epWorldSize, const aclIntArray* sendCounts, const aclIntArray* recvCounts, bool transGmmWeight, bool transMmWeight,
    aclTensor* y, aclTensor* mmYOptional, uint64_t* workspaceSize, aclOpExecutor** executor) {
  return gmmav::aclnn::prepare(kV1, PrepareArgs(gmmX, gmmWeight, sendCountsTensorOptional, recvCountsTensorOptional, mmXOptional,
                                                mmWeightOptional, group, epWorldSize, sendCounts, recvCounts, transGmmWeight,
                                                transMmWeight, y, mmYOptional, workspaceSize, executor));
}

aclnnStatus aclnnGroupedMatMulAlltoAllv(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor, aclrtStream stream) {
  return gmmav::aclnn::execute(kV1, workspace, workspaceSize, executor, stream);
}

aclnnStatus aclnnGroupedMatMulAlltoAllvV2GetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional, const aclTensor* mmWeightOptional, const char* group,
    const char* commMode, int64_t epWorldSize, const aclIntArray* sendCounts, const aclIntArray* recvCounts, bool transGmmWeight,
    bool transMmWeight, aclTensor* y, aclTensor* mmYOptional, uint64_t* workspaceSize, aclOpExecutor** executor) {
  PrepareArgs a(gmmX, gmmWeight, sendCountsTensorOptional, recvCountsTensorOptional, mmXOptional, mmWeightOptional, group,
                epWorldSize, sendCounts, recvCounts, transGmmWeight, transMmWeight, y, mmYOptional, workspaceSize, executor);
  a.has_comm_mode = true;
  a.comm_mode = commMode;
  return gmmav::aclnn::prepare(kV2, a);
}

aclnnStatus aclnnGroupedMatMulAlltoAllvV2(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor, aclrtStream stream) {
  return gmmav::aclnn::execute(kV2, workspace, workspaceSize, executor, stream);
}

}  // extern "C"
