// aclnnInit / aclnnFinalize: nothing to set up on the CPU (no kernels to load).
#include "aclnn/aclnn_base.h"

extern "C" {

aclnnStatus aclnnInit(const char*) { return ACLNN_SUCCESS; }
aclnnStatus aclnnFinalize(void) { return ACLNN_SUCCESS; }

}  // extern "C"
