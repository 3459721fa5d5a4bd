/*
 * gmmav compat header: acl/acl_op.h
 *
 * Placeholder for the single-operator (aclop*) API of CANN. gmmav provides none of it;
 * the file exists so that acl/acl.h keeps the vendor include layout.
 */
#ifndef GMMAV_COMPAT_ACL_ACL_OP_H_
#define GMMAV_COMPAT_ACL_ACL_OP_H_

#include "acl_base.h"

#endif /* GMMAV_COMPAT_ACL_ACL_OP_H_ */
