/*
 * gmmav compat header: acl/acl_mdl.h
 *
 * Placeholder for the model (aclmdl*) API of CANN. gmmav provides none of it; the file
 * exists so that acl/acl.h keeps the vendor include layout.
 */
#ifndef GMMAV_COMPAT_ACL_ACL_MDL_H_
#define GMMAV_COMPAT_ACL_ACL_MDL_H_

#include "acl_base.h"

#endif /* GMMAV_COMPAT_ACL_ACL_MDL_H_ */
