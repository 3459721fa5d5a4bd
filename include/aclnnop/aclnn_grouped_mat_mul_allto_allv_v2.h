/*
 * gmmav compat header: aclnnop/aclnn_grouped_mat_mul_allto_allv_v2.h
 *
 * aclnnGroupedMatMulAlltoAllvV2: aclnnGroupedMatMulAlltoAllv with the communication engine
 * named by commMode (after group). "aiv", "ai_cpu" and "ccu" are accepted and change
 * nothing on a CPU; NULL is 161001, any other string 161002. Everything else is as in
 * aclnn_grouped_mat_mul_allto_allv.h.
 */
#ifndef GMMAV_COMPAT_ACLNNOP_ACLNN_GROUPED_MAT_MUL_ALLTO_ALLV_V2_H_
#define GMMAV_COMPAT_ACLNNOP_ACLNN_GROUPED_MAT_MUL_ALLTO_ALLV_V2_H_

#include "aclnn_grouped_mat_mul_allto_allv.h"

#ifdef __cplusplus
extern "C" {
#endif

ACLNN_API aclnnStatus aclnnGroupedMatMulAlltoAllvV2GetWorkspaceSize(
    const aclTensor* gmmX, const aclTensor* gmmWeight, const aclTensor* sendCountsTensorOptional,
    const aclTensor* recvCountsTensorOptional, const aclTensor* mmXOptional,
    const aclTensor* mmWeightOptional, const char* group, const char* commMode, int64_t epWorldSize,
    const aclIntArray* sendCounts, const aclIntArray* recvCounts, bool transGmmWeight,
    bool transMmWeight, aclTensor* y, aclTensor* mmYOptional, uint64_t* workspaceSize,
    aclOpExecutor** executor);

/* Phase 2 of an executor from aclnnGroupedMatMulAlltoAllvV2GetWorkspaceSize (or V1's). */
ACLNN_API aclnnStatus aclnnGroupedMatMulAlltoAllvV2(void* workspace, uint64_t workspaceSize,
                                                    aclOpExecutor* executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_ACLNNOP_ACLNN_GROUPED_MAT_MUL_ALLTO_ALLV_V2_H_ */
