/*
 * gmmav compat header: aclnn/aclnn_base.h
 *
 * aclnn library init/finalize, plus (gmmav addition) the ACLNN_* status macros from
 * aclnn/aclnn_status.h. Includes the meta API, as the vendor header does.
 */
#ifndef GMMAV_COMPAT_ACLNN_ACLNN_BASE_H_
#define GMMAV_COMPAT_ACLNN_ACLNN_BASE_H_

#ifdef __cplusplus
#include <cstdint>
#include <cstdlib>
#else
#include <stdint.h>
#include <stdlib.h>
#endif

#include "aclnn/acl_meta.h"
#include "aclnn/aclnn_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Optional initialisation of the aclnn layer; configPath may be NULL. */
ACL_FUNC_VISIBILITY aclnnStatus aclnnInit(const char* configPath);

/* Counterpart of aclnnInit. */
ACL_FUNC_VISIBILITY aclnnStatus aclnnFinalize(void);

#ifdef __cplusplus
}
#endif

#endif /* GMMAV_COMPAT_ACLNN_ACLNN_BASE_H_ */
