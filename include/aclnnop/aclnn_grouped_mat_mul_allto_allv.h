/*
 * gmmav compat header: aclnnop/aclnn_grouped_mat_mul_allto_allv.h
 *
 * The two-phase aclnn entry point of GroupedMatMulAlltoAllv on the gmmav CPU runtime:
 *   y    = AlltoAllv(Unpermute(GroupedMatMul(gmmX, gmmWeight)))  over communicator `group`
 *   mmY  = mmX @ mmWeight                                         (optional shared expert)
 * Prototypes are exactly the vendor's (16 + 4 parameters); semantics and validation
 * rules are those of the project specification. Results: ACLNN_SUCCESS,
 * ACLNN_ERR_PARAM_NULLPTR (161001), ACLNN_ERR_PARAM_INVALID (161002) or another
 * ACLNN_ERR_* code; the reason of a failure is readable through aclGetRecentErrMsg().
 */
#ifndef GMMAV_COMPAT_ACLNNOP_ACLNN_GROUPED_MAT_MUL_ALLTO_ALLV_H_
#define GMMAV_COMPAT_ACLNNOP_ACLNN_GROUPED_MAT_MUL_ALLTO_ALLV_H_

#ifdef __cplusplus
#include <string>
#else
#include <stdbool.h>
#endif

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Phase 1: validate the arguments, plan the call and report the workspace it needs.
 *   gmmX (A, H1), gmmWeight (e, H1, N1) or (e, N1, H1) if transGmmWeight; FP16 or BF16, ND.
 *   sendCountsTensorOptional, recvCountsTensorOptional: must be NULL (unsupported).
 *   mmXOptional (BS, H2), mmWeightOptional (H2, N2) or (N2, H2) if transMmWeight,
 *   mmYOptional (BS, N2): all three given or all three NULL.
 *   group: communicator name from HcclGetCommName (shorter than 128 characters).
 *   epWorldSize: ranks in group. sendCounts / recvCounts: e * epWorldSize int64 row counts,
 *   rank-major (index = rank * e + localExpert).
 *   y (sum(recvCounts), N1): output.
 *   *workspaceSize: bytes the caller must provide to phase 2; *executor: the prepared call.
 */
ACLNN_API aclnnStatus aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional,
    const aclTensor* mmWeightOptional, const char* group, int64_t epWorldSize,
    const aclIntArray* sendCounts, const aclIntArray* recvCounts, bool transGmmWeight,
    bool transMmWeight, aclTensor* y, aclTensor* mmYOptional, uint64_t* workspaceSize,
    aclOpExecutor** executor);

/*
 * Phase 2: queue the prepared call on stream (asynchronous; collective across the group).
 * workspace must hold workspaceSize bytes (may be NULL when the size is 0). The executor
 * is consumed. Completion and run-time errors are reported by aclrtSynchronizeStream[WithTimeout].
 */
ACLNN_API aclnnStatus aclnnGroupedMatMulAlltoAllv(void* workspace, uint64_t workspaceSize,
                                                  aclOpExecutor* executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_ACLNNOP_ACLNN_GROUPED_MAT_MUL_ALLTO_ALLV_H_ */
