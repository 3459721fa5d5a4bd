/*
 * gmmav compat header: aclnnop/aclnn_allto_allv_grouped_mat_mul.h
 *
 * The two-phase aclnn entry point of AlltoAllvGroupedMatMul (the dispatch op) on the gmmav
 * CPU runtime:
 *   permuteOut = Permute(AlltoAllv(gmmX))   over communicator `group`, expert-major
 *   gmmY       = permuteOut @ gmmWeight     (one GEMM per local expert)
 *   mmY        = mmX @ mmWeight             (optional shared expert)
 * Prototypes are exactly the vendor's (18 + 4 parameters); semantics and validation rules
 * are those of docs/dispatch-op.md. Results: ACLNN_SUCCESS, ACLNN_ERR_PARAM_NULLPTR (161001),
 * ACLNN_ERR_PARAM_INVALID (161002) or another ACLNN_ERR_* code; the reason of a failure is
 * readable through aclGetRecentErrMsg().
 */
#ifndef GMMAV_COMPAT_ACLNNOP_ACLNN_ALLTO_ALLV_GROUPED_MAT_MUL_H_
#define GMMAV_COMPAT_ACLNNOP_ACLNN_ALLTO_ALLV_GROUPED_MAT_MUL_H_

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
 *   gmmX (BSK, H1), rows by destination global expert d * e + j; gmmWeight (e, H1, N1), or
 *   (e, N1, H1) if transGmmWeight; FP16 or BF16, ND.
 *   sendCountsTensorOptional, recvCountsTensorOptional: must be NULL (unsupported; 161001).
 *   mmXOptional (BS, H2), mmWeightOptional (H2, N2) or (N2, H2) if transMmWeight,
 *   mmYOptional (BS, N2): all three given or all three NULL.
 *   group: communicator name from HcclGetCommName (non-empty, shorter than 128 characters).
 *   epWorldSize: ranks in group. sendCounts[d * e + j]: rows sent to rank d's expert j;
 *   recvCounts[s * e + j]: rows received from rank s for local expert j (e * epWorldSize each).
 *   permuteOutFlag: whether permuteOutOptional (A, H1) is written; must match the pointer.
 *   gmmY (A, N1), A = sum(recvCounts), expert-major, source-minor.
 *   *workspaceSize: bytes the caller must provide to phase 2; *executor: the prepared call.
 */
ACLNN_API aclnnStatus aclnnAlltoAllvGroupedMatMulGetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional,
    const aclTensor* mmWeightOptional, const char* group, int64_t epWorldSize,
    const aclIntArray* sendCounts, const aclIntArray* recvCounts, bool transGmmWeight,
    bool transMmWeight, bool permuteOutFlag, aclTensor* gmmY, aclTensor* mmYOptional,
    aclTensor* permuteOutOptional, uint64_t* workspaceSize, aclOpExecutor** executor);

/*
 * Phase 2: queue the prepared call on stream (asynchronous; collective across the group).
 * workspace must hold workspaceSize bytes (may be NULL when the size is 0). The executor
 * is consumed; it must come from aclnnAlltoAllvGroupedMatMul[V2]GetWorkspaceSize.
 * Completion and run-time errors are reported by aclrtSynchronizeStream[WithTimeout].
 */
ACLNN_API aclnnStatus aclnnAlltoAllvGroupedMatMul(void* workspace, uint64_t workspaceSize,
                                                  aclOpExecutor* executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_ACLNNOP_ACLNN_ALLTO_ALLV_GROUPED_MAT_MUL_H_ */
