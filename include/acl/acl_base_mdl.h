/*
 * gmmav compat header: acl/acl_base_mdl.h
 *
 * Placeholder for the model-base declarations of the CANN API. gmmav provides no model
 * API; this file exists only so that acl/acl_base.h has the vendor include layout.
 */
#ifndef GMMAV_COMPAT_ACL_ACL_BASE_MDL_H_
#define GMMAV_COMPAT_ACL_ACL_BASE_MDL_H_

#endif /* GMMAV_COMPAT_ACL_ACL_BASE_MDL_H_ */
