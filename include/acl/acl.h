/*
 * gmmav compat header: acl/acl.h
 *
 * Entry header of the CANN runtime API as provided by the gmmav CPU runtime. As in the
 * current vendor layout it only includes the runtime, op and model headers; aclInit,
 * aclFinalize and aclGetRecentErrMsg are declared in acl/acl_rt.h.
 */
#ifndef GMMAV_COMPAT_ACL_ACL_H_
#define GMMAV_COMPAT_ACL_ACL_H_

#include "acl_rt.h"
#include "acl_op.h"
#include "acl_mdl.h"

#endif /* GMMAV_COMPAT_ACL_ACL_H_ */
