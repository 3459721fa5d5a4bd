/* Calls from C: the acl headers compile as C, and C may pass any int as an enum argument. */
#include "acl/acl.h"

int compat_c_memcpy(void* dst, size_t destMax, const void* src, size_t count, int kind) {
  return aclrtMemcpy(dst, destMax, src, count, (aclrtMemcpyKind)kind);
}

/* The operator headers compile as C too (stdbool, no C++ in the prototypes). */
#include "aclnnop/aclnn_allto_allv_grouped_mat_mul_v2.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv_v2.h"

/* Each new phase-1 entry point called from C with nothing: its 161001 status (the sum of four). */
int compat_c_null_calls(void) {
  uint64_t ws = 0;
  aclOpExecutor* ex = NULL;
  return aclnnAlltoAllvGroupedMatMulGetWorkspaceSize(NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, NULL, NULL, false, false, false,
                                                     NULL, NULL, NULL, &ws, &ex) +
         aclnnAlltoAllvGroupedMatMulV2GetWorkspaceSize(NULL, NULL, NULL, NULL, NULL, NULL, NULL, "aiv", 1, NULL, NULL, false,
                                                       false, false, NULL, NULL, NULL, &ws, &ex) +
         aclnnGroupedMatMulAlltoAllvV2GetWorkspaceSize(NULL, NULL, NULL, NULL, NULL, NULL, NULL, "aiv", 1, NULL, NULL, false,
                                                       false, NULL, NULL, &ws, &ex) +
         aclnnAlltoAllvGroupedMatMul(NULL, 0, NULL, NULL);
}
