/*
 * gmmav compat header: acl/acl_base.h
 *
 * Umbrella for the ACL base declarations, laid out like the public CANN header:
 * base types and codes, the (empty) model base, runtime error codes and GE error codes.
 * Requires the directory that contains acl/ on the include path.
 */
#ifndef GMMAV_COMPAT_ACL_ACL_BASE_H_
#define GMMAV_COMPAT_ACL_ACL_BASE_H_

#include "acl/acl_base_rt.h"
#include "acl/acl_base_mdl.h"
#include "error_codes/rt_error_codes.h"
#include "error_codes/ge_error_codes.h"

#endif /* GMMAV_COMPAT_ACL_ACL_BASE_H_ */
