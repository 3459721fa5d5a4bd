// Uses the installed C API (the vendor's header paths): the first phase of
// aclnnGroupedMatMulAlltoAllv must reject null arguments with the vendor code
// and leave a message naming the parameter.
#include <cstdio>
#include <cstring>

#include "acl/acl.h"
#include "aclnn/aclnn_status.h"
#include "aclnnop/aclnn_grouped_mat_mul_allto_allv.h"
#include "hccl/hccl.h"

int main() {
  if (aclInit(nullptr) != ACL_SUCCESS) {
    std::fprintf(stderr, "aclInit failed\n");
    return 1;
  }
  std::uint64_t workspace = 0;
  aclOpExecutor* executor = nullptr;
  const aclnnStatus st =
      aclnnGroupedMatMulAlltoAllvGetWorkspaceSize(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, "group", 2, nullptr,
                                                  nullptr, false, false, nullptr, nullptr, &workspace, &executor);
  const char* msg = aclGetRecentErrMsg();
  const bool ok = st == ACLNN_ERR_PARAM_NULLPTR && msg != nullptr && std::strstr(msg, "gmmX") != nullptr;
  std::printf("aclnn consumer: %s (status %d, message: %s)\n", ok ? "PASS" : "FAIL", static_cast<int>(st), msg ? msg : "(none)");
  aclFinalize();
  return ok ? 0 : 1;
}
